//! The reference verifier: decides, as Entra CBA would, whether a certificate signs a user in and how
//! strongly. It never imports the agent's token, reader, PIN or picker modules.
//!
//! [`policy`] is the Graph-shaped configuration, [`trust`] the CAs and chain building,
//! [`revocation`] the CRLs, [`directory`] the users and groups, and [`decide`] puts them together.
//! [`ca_detail`] is the one shape CAs are shown in, [`graph_files`] reads them from files in Graph's shapes, and [`graph_schema`] holds the admin
//! API's writes to the properties Graph declares.
//! [`tenant_files`] imports and exports a whole tenant as a folder of Graph GET responses.
//! [`commands`] are the `certauth-verifier` commands, called by its binary.

pub mod ca_detail;
pub mod commands;
pub mod decide;
pub mod directory;
pub mod graph_files;
pub mod graph_schema;
pub mod jwt;
pub mod outcome;
pub mod policy;
pub mod revocation;
pub mod server;
pub mod stamps;
pub mod store;
pub mod tenant_files;
pub mod text_rules;
pub mod trust;
