//! Where rows go: Postgres, the system of record.

pub mod postgres;
