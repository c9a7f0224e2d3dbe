//! The versioned schema of the Bubble store, applied at start by `Migrator::up`.
pub use sea_orm_migration::prelude::*;

mod m20261123_000001_bubble_core;
mod m20261123_000002_counsellor_accounts;
mod m20261123_000003_push_outbox;
mod m20261123_000004_tincan;
mod m20261123_000005_presence;
mod m20261203_000006_presence_person;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_bubble_core::Migration),
            Box::new(m20261123_000002_counsellor_accounts::Migration),
            Box::new(m20261123_000003_push_outbox::Migration),
            Box::new(m20261123_000004_tincan::Migration),
            Box::new(m20261123_000005_presence::Migration),
            Box::new(m20261203_000006_presence_person::Migration),
        ]
    }
}
