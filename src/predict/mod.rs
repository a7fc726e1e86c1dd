//! Prediction: replaying a workload's trace against an image's file table
//! under each pulling strategy with a calibrated profile.
//!
//! Owns the model equations (docs/model.md): what each strategy costs, as
//! [`cost::Cost`] vectors whose intervals come from the profile. Does not
//! measure, fetch or render.
pub mod cost;
