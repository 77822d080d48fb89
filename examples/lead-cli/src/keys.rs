//! `lead api-key create`: a new key for the lead and dashboard APIs.

use clap::Subcommand;
use lead_http::{Scopes, hash_key};
use rand::RngCore;

use crate::Failure;

/// `lead api-key …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Print a new random key once, and the entry to add to `LEAD_API_KEYS`.
    ///
    /// Only the key's SHA-256 goes into the configuration: the key itself
    /// is shown here once and stored nowhere.
    #[command(after_help = "Example:\n  lead api-key create --scopes read,write")]
    Create {
        /// What the key may do: `read`, `write` or `read,write`.
        #[arg(long, default_value = "read")]
        scopes: String,
    },
}

/// Runs a key command.
pub(crate) fn run(command: KeyCommand) -> Result<(), Failure> {
    match command {
        KeyCommand::Create { scopes } => {
            let parsed = Scopes::parse(&scopes).map_err(|_| {
                Failure::usage(format!(
                    "--scopes: {scopes:?} is not read, write or read,write"
                ))
            })?;
            if !parsed.read && !parsed.write {
                return Err(Failure::usage("--scopes: give read, write or read,write"));
            }
            let key = new_key();
            let scopes = match (parsed.read, parsed.write) {
                (true, true) => "read,write",
                (true, false) => "read",
                _ => "write",
            };
            println!("{key}");
            eprintln!(
                "\nThe key above is shown once; keep it in your secret store.\nAdd this entry to LEAD_API_KEYS (entries are separated by ;) and restart the server:\n"
            );
            println!("{}:{scopes}", hash_key(&key));
            Ok(())
        }
    }
}

/// `lk_` and 32 random bytes in hex: 256 bits from the operating system's
/// generator (through `rand`'s thread generator, seeded from it).
fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("lk_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::new_key;

    #[test]
    fn keys_are_long_random_and_prefixed() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert!(a.starts_with("lk_"));
        assert_eq!(a.len(), 3 + 64);
        assert!(a[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
