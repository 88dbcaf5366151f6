//! `edx-webhooks hash-password`: the admin password as an argon2 hash, for
//! `EDX_WEBHOOKS_ADMIN_PASSWORD_HASH`, so that no file holds the password.

use std::io::{BufRead, IsTerminal};

use argon2::{Argon2, PasswordHasher};

/// Reads the password: typed without echo (twice) at a terminal, else the
/// first line of standard input.
pub fn read() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Admin password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("The same again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// The PHC string of `password` (argon2id, a new random salt, the default
/// costs), which the admin login accepts.
pub fn hash(password: &str) -> Result<String, String> {
    if password.trim().is_empty() {
        return Err("the password is empty".into());
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHash, PasswordVerifier};

    #[test]
    fn the_hash_verifies_the_password_and_nothing_else() {
        let phc = hash("correct $horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        let argon2 = Argon2::default();
        assert!(argon2
            .verify_password(b"correct $horse battery", &parsed)
            .is_ok());
        assert!(argon2.verify_password(b"wrong", &parsed).is_err());
        assert!(hash("  ").is_err());
    }
}
