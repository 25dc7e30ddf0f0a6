//! Protection levels from queueing load (seed 002): per unit (a tenant's service or resource),
//! λ the arrival rate and μ the service rate, each smoothed by an exponentially weighted moving
//! average, and ρ = λ/μ. Protection tightens as soon as ρ crosses a threshold and relaxes one
//! step at a time once ρ falls well below (hysteresis), so it does not flap.

mod level;
mod unit;
mod unit_load;

pub use level::ProtectionLevel;
pub use unit::{event_unit_key, is_unit_name_valid, Selector, SelectorError, UnitProtection};
pub use unit_load::{ProtectionParams, ProtectionParamsError, Transition, UnitLoad};
