//! What the comparators and blocking read of one lead's keys.

/// What the comparators and blocking read of one lead's keys: a lead's
/// own [`MatchKeys`](crate::MatchKeys), or one row of a
/// [`KeyTable`](super::KeyTable) (the compact form of a batch). One set of
/// rules reads both.
pub(crate) trait KeyView {
    /// [`MatchKeys::email`](crate::MatchKeys::email).
    fn email(&self) -> &str;
    /// The e-mail key's part before its last `@`.
    fn local_part(&self) -> &str {
        local_part(self.email())
    }
    /// [`MatchKeys::phone`](crate::MatchKeys::phone).
    fn phone(&self) -> Option<&str>;
    /// [`MatchKeys::first_name`](crate::MatchKeys::first_name).
    fn first_name(&self) -> Option<&str>;
    /// [`MatchKeys::last_name`](crate::MatchKeys::last_name).
    fn last_name(&self) -> Option<&str>;
    /// [`MatchKeys::last_name_phonetic`](crate::MatchKeys::last_name_phonetic):
    /// primary and alternate code.
    fn last_name_sounds(&self) -> Option<(&str, &str)>;
    /// [`MatchKeys::company`](crate::MatchKeys::company) tokens, sorted;
    /// none when unknown.
    fn company(&self) -> impl Iterator<Item = &str> + Clone;
    /// [`MatchKeys::corporate_domain`](crate::MatchKeys::corporate_domain).
    fn corporate_domain(&self) -> Option<&str>;
    /// Ids of the first name, last name and company, equal exactly when
    /// the values are (a [`KeyTable`](super::KeyTable) row's interned ids);
    /// `None` where unknown, and then [`Memo`](super::similarity::Memo) does
    /// not remember.
    fn ids(&self) -> [Option<u32>; 3] {
        [None; 3]
    }
    /// The company's tokens as ids, in the order of
    /// [`company`](Self::company), and the token text of an id (a
    /// [`KeyTable`](super::KeyTable) row's interned tokens).
    fn company_token_ids(&self) -> Option<(&[u32], &[Box<str>])> {
        None
    }
    /// [`text_hash`](super::hash::text_hash) of the e-mail key and
    /// [`local_part_hash`](super::hash::local_part_hash) of its local part,
    /// when stored: different hashes are different values.
    fn email_hashes(&self) -> Option<(u32, u32)> {
        None
    }
}

pub(super) fn local_part(email: &str) -> &str {
    email.rsplit_once('@').map_or(email, |(l, _)| l)
}
