//! The settings both SQL stores check the same way, before they connect.

use lead_core::{Error, Result};

use crate::group::GroupCommit;

/// Checks what every SQL store's settings must satisfy: a URL, at least
/// one connection, and room for at least one commit in a group-commit
/// batch. `store` names the database in messages (`SQLite`, `PostgreSQL`).
/// Errors name the setting; the URL is never quoted (it may carry a
/// password).
pub fn check_pool(
    store: &str,
    url: &str,
    max_connections: u32,
    group_commit: Option<GroupCommit>,
) -> Result<()> {
    if url.trim().is_empty() {
        return Err(Error::invalid(
            "database_url",
            "invalid_database_url",
            format!("the {store} database URL is empty"),
        ));
    }
    if max_connections == 0 {
        return Err(Error::invalid(
            "max_connections",
            "invalid_max_connections",
            "the pool needs at least one connection",
        ));
    }
    if group_commit.is_some_and(|g| g.max_batch == 0) {
        return Err(Error::invalid(
            "group_commit.max_batch",
            "invalid_group_commit",
            "a group commit needs room for at least one commit",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(err: Error) -> String {
        match err {
            Error::Invalid { fields } => fields[0].field.clone(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn each_bad_setting_is_named() {
        let empty_batch = GroupCommit {
            max_batch: 0,
            ..GroupCommit::default()
        };
        assert_eq!(
            field(check_pool("Test", " ", 4, None).unwrap_err()),
            "database_url"
        );
        assert_eq!(
            field(check_pool("Test", "x", 0, None).unwrap_err()),
            "max_connections"
        );
        assert_eq!(
            field(check_pool("Test", "x", 4, Some(empty_batch)).unwrap_err()),
            "group_commit.max_batch"
        );
        assert!(check_pool("Test", "x", 4, Some(GroupCommit::default())).is_ok());
    }
}
