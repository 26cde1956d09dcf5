//! Which of the four NCTS messages a document is.

/// The four NCTS messages gbal validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// CD034A, the guarantee balance query.
    Ie034,
    /// CD037A, the balance response.
    Ie037,
    /// CD906A, the functional NACK.
    Ie906,
    /// CC917A, the XML NACK.
    Ie917,
}

impl MessageKind {
    /// All four kinds.
    pub const ALL: [MessageKind; 4] = [
        MessageKind::Ie034,
        MessageKind::Ie037,
        MessageKind::Ie906,
        MessageKind::Ie917,
    ];

    /// The root element name, e.g. `CD037A`.
    pub fn root(self) -> &'static str {
        match self {
            MessageKind::Ie034 => "CD034A",
            MessageKind::Ie037 => "CD037A",
            MessageKind::Ie906 => "CD906A",
            MessageKind::Ie917 => "CC917A",
        }
    }

    /// The kind whose root element is `root`.
    pub fn from_root(root: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.root() == root)
    }

    /// The kind named by a message-type header value (`IE034`, ...; exact match).
    pub fn from_header(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.header() == value)
    }

    /// The message-type header value, e.g. `IE037`.
    pub fn header(self) -> &'static str {
        match self {
            MessageKind::Ie034 => "IE034",
            MessageKind::Ie037 => "IE037",
            MessageKind::Ie906 => "IE906",
            MessageKind::Ie917 => "IE917",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_kind_names() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::from_root(kind.root()), Some(kind));
            assert_eq!(MessageKind::from_header(kind.header()), Some(kind));
        }
        assert_eq!(MessageKind::from_header("ie034"), None);
        assert_eq!(MessageKind::from_root("CD034"), None);
    }
}
