//! What the actor tests share.
#![allow(dead_code)]

pub mod worker;
