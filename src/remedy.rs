//! What the user can change to get past an error, named for the option and not for any one
//! program's spelling of it. Library errors carry a remedy as a fact; each program says it in its
//! own words (the command line names its flags, the agent's API its parameters).

/// A change the user can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Send the PIN even on the token's final try.
    AllowFinalTry,
    /// Say where the PIN comes from, as there is no terminal to ask on.
    PinSource,
    /// Use a graphical pinentry, as the terminal one has no terminal.
    GraphicalPinentry,
    /// Give the CA that issued the server's certificate.
    ServerCa,
    /// Give trusted roots, as the system has none.
    TrustedRoots,
    /// Name one certificate.
    NameCertificate,
}

impl Remedy {
    const ALL: [Remedy; 6] = [
        Self::AllowFinalTry,
        Self::PinSource,
        Self::GraphicalPinentry,
        Self::ServerCa,
        Self::TrustedRoots,
        Self::NameCertificate,
    ];

    /// The remedy's name on the wire (the agent's error answers).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowFinalTry => "allowFinalTry",
            Self::PinSource => "pinSource",
            Self::GraphicalPinentry => "graphicalPinentry",
            Self::ServerCa => "serverCa",
            Self::TrustedRoots => "trustedRoots",
            Self::NameCertificate => "nameCertificate",
        }
    }

    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_remedy_round_trips_on_the_wire() {
        for remedy in Remedy::ALL {
            assert_eq!(Remedy::from_wire(remedy.as_str()), Some(remedy));
        }
        assert_eq!(Remedy::from_wire("dance"), None);
    }
}
