//! The kinds of personal data and secrets the scanner knows, with the names policies use
//! (`email`, `credit_card`, ...) and the labels redaction writes (`[EMAIL]`, `<CARD_1>`).

use std::fmt;
use std::sync::Arc;

/// A kind of personal data or secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An email address, plain or obfuscated (`name [at] domain [dot] com`).
    Email,
    /// A payment card number (IIN table + Luhn).
    CreditCard,
    /// An IBAN (per-country length + mod 97).
    Iban,
    /// A US social security number.
    UsSsn,
    /// A phone number.
    Phone,
    /// An IPv4 or IPv6 address.
    IpAddress,
    MacAddress,
    /// A Bitcoin or Ethereum address.
    CryptoWallet,
    /// German tax identification number (Steuer-IdNr).
    DeTaxId,
    /// French social security number (NIR).
    FrNir,
    /// Spanish DNI or NIE.
    EsDni,
    /// Italian codice fiscale.
    ItFiscalCode,
    /// Dutch citizen service number (BSN).
    NlBsn,
    /// Polish PESEL.
    PlPesel,
    /// Belgian national register number.
    BeNationalNumber,
    /// Swedish personnummer.
    SePersonnummer,
    /// Finnish personal identity code (HETU).
    FiHetu,
    /// UK National Insurance number.
    UkNino,
    /// UK NHS number.
    UkNhs,
    /// Austrian social insurance number (Sozialversicherungsnummer).
    AtSvnr,
    /// Portuguese tax number (NIF).
    PtNif,
    /// Irish Personal Public Service number.
    IePps,
    /// Danish CPR number.
    DkCpr,
    /// Norwegian fødselsnummer (and D- and H-numbers).
    NoFnr,
    /// Czech or Slovak birth number (rodné číslo).
    CzRc,
    /// Romanian personal numeric code (CNP).
    RoCnp,
    /// Greek social security number (AMKA).
    GrAmka,
    /// Hungarian tax identification number (adóazonosító jel).
    HuTaxId,
    /// Canadian social insurance number.
    CaSin,
    /// Australian tax file number.
    AuTfn,
    /// An API key, token, private key or credential.
    Secret,
    /// A detector from config (dictionary or pattern), by its name.
    Custom(Arc<str>),
}

/// Every built-in kind, in the order documentation lists them.
pub const BUILTIN: [Kind; 31] = [
    Kind::Email,
    Kind::CreditCard,
    Kind::Iban,
    Kind::UsSsn,
    Kind::Phone,
    Kind::IpAddress,
    Kind::MacAddress,
    Kind::CryptoWallet,
    Kind::DeTaxId,
    Kind::FrNir,
    Kind::EsDni,
    Kind::ItFiscalCode,
    Kind::NlBsn,
    Kind::PlPesel,
    Kind::BeNationalNumber,
    Kind::SePersonnummer,
    Kind::FiHetu,
    Kind::UkNino,
    Kind::UkNhs,
    Kind::AtSvnr,
    Kind::PtNif,
    Kind::IePps,
    Kind::DkCpr,
    Kind::NoFnr,
    Kind::CzRc,
    Kind::RoCnp,
    Kind::GrAmka,
    Kind::HuTaxId,
    Kind::CaSin,
    Kind::AuTfn,
    Kind::Secret,
];

/// Names that stand for several kinds in a policy's `redact.kinds`.
pub const GROUPS: [&str; 3] = ["any", "national_id", "pii"];

impl Kind {
    /// The name policies and audit records use.
    pub fn name(&self) -> &str {
        match self {
            Kind::Email => "email",
            Kind::CreditCard => "credit_card",
            Kind::Iban => "iban",
            Kind::UsSsn => "us_ssn",
            Kind::Phone => "phone",
            Kind::IpAddress => "ip_address",
            Kind::MacAddress => "mac_address",
            Kind::CryptoWallet => "crypto_wallet",
            Kind::DeTaxId => "de_tax_id",
            Kind::FrNir => "fr_nir",
            Kind::EsDni => "es_dni",
            Kind::ItFiscalCode => "it_fiscal_code",
            Kind::NlBsn => "nl_bsn",
            Kind::PlPesel => "pl_pesel",
            Kind::BeNationalNumber => "be_national_number",
            Kind::SePersonnummer => "se_personnummer",
            Kind::FiHetu => "fi_hetu",
            Kind::UkNino => "uk_nino",
            Kind::UkNhs => "uk_nhs",
            Kind::AtSvnr => "at_svnr",
            Kind::PtNif => "pt_nif",
            Kind::IePps => "ie_pps",
            Kind::DkCpr => "dk_cpr",
            Kind::NoFnr => "no_fnr",
            Kind::CzRc => "cz_rc",
            Kind::RoCnp => "ro_cnp",
            Kind::GrAmka => "gr_amka",
            Kind::HuTaxId => "hu_tax_id",
            Kind::CaSin => "ca_sin",
            Kind::AuTfn => "au_tfn",
            Kind::Secret => "secret",
            Kind::Custom(name) => name,
        }
    }

    /// The upper-case label replacements carry (`EMAIL`, `CARD`).
    pub fn label(&self) -> String {
        match self {
            Kind::CreditCard => "CARD".into(),
            Kind::UsSsn => "SSN".into(),
            Kind::IpAddress => "IP".into(),
            Kind::MacAddress => "MAC".into(),
            Kind::CryptoWallet => "WALLET".into(),
            other => other
                .name()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect(),
        }
    }

    /// The built-in kind of this name.
    pub fn builtin(name: &str) -> Option<Kind> {
        BUILTIN.iter().find(|k| k.name() == name).cloned()
    }

    /// Whether this is a national identifier.
    pub fn is_national_id(&self) -> bool {
        matches!(
            self,
            Kind::DeTaxId
                | Kind::FrNir
                | Kind::EsDni
                | Kind::ItFiscalCode
                | Kind::NlBsn
                | Kind::PlPesel
                | Kind::BeNationalNumber
                | Kind::SePersonnummer
                | Kind::FiHetu
                | Kind::UkNino
                | Kind::UkNhs
                | Kind::UsSsn
                | Kind::AtSvnr
                | Kind::PtNif
                | Kind::IePps
                | Kind::DkCpr
                | Kind::NoFnr
                | Kind::CzRc
                | Kind::RoCnp
                | Kind::GrAmka
                | Kind::HuTaxId
                | Kind::CaSin
                | Kind::AuTfn
        )
    }

    /// Whether a policy's kind name (a kind or a group) selects this kind.
    pub fn selected_by(&self, name: &str) -> bool {
        match name {
            "any" => true,
            "pii" => *self != Kind::Secret,
            "national_id" => self.is_national_id(),
            other => self.name() == other,
        }
    }

    /// When two findings overlap, the more specific one is kept: a validated card number is not
    /// also a phone number, a key inside a URL is a secret rather than part of it.
    pub fn specificity(&self) -> u8 {
        match self {
            Kind::Secret => 100,
            Kind::CreditCard => 90,
            Kind::Iban => 85,
            Kind::FrNir
            | Kind::BeNationalNumber
            | Kind::SePersonnummer
            | Kind::FiHetu
            | Kind::EsDni
            | Kind::ItFiscalCode
            | Kind::UkNino => 80,
            Kind::RoCnp | Kind::CzRc | Kind::NoFnr | Kind::AtSvnr => 79,
            Kind::DeTaxId
            | Kind::PlPesel
            | Kind::NlBsn
            | Kind::UkNhs
            | Kind::GrAmka
            | Kind::HuTaxId
            | Kind::PtNif
            | Kind::IePps
            | Kind::CaSin
            | Kind::AuTfn => 78,
            Kind::DkCpr => 77,
            Kind::UsSsn => 75,
            Kind::CryptoWallet => 70,
            Kind::Email => 65,
            Kind::MacAddress => 60,
            Kind::IpAddress => 55,
            Kind::Phone => 40,
            Kind::Custom(_) => 30,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
