//! Integration tests of the store and the actions handler, against moto
//! (DynamoDB, SQS FIFO, Secrets Manager) and a local stand-in for Slack's
//! `usergroups.users.list`. One test binary; one moto server for all of it.

mod handler;
mod startup;
mod store;
mod support;
