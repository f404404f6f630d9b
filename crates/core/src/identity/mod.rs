//! Who is behind an account: the person identities that separation of duties compares.

pub mod person;
