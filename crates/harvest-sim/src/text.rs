//! Vocabulary for generated text: names, companies, titles, sentences and HTML.
//!
//! Contract: every function is a pure function of the `Rng` it is given.  The vocabulary
//! deliberately mixes accents, CJK, emoji, quotes, backslashes and newlines so a consumer's
//! JSON → Arrow → Parquet path is exercised with awkward text.

use super::rng::Rng;

pub const FIRST: &[&str] = &[
    "Ana",
    "Björn",
    "Chloé",
    "Dmitri",
    "Émile",
    "Fatima",
    "Giulia",
    "Hiroshi",
    "Ingrid",
    "José",
    "Kwame",
    "Léa",
    "Mateo",
    "Nuño",
    "Olúwaseun",
    "Priya",
    "Quinn",
    "Renée",
    "Søren",
    "Thảo",
    "Uma",
    "Václav",
    "Wei",
    "Xóchitl",
    "Yusuf",
    "Zoë",
    "美咲",
    "太郎",
    "Jean-Luc",
    "Mary-Kate",
];
pub const LAST: &[&str] = &[
    "García",
    "Müller",
    "O'Brien",
    "Nguyễn",
    "Kowalski",
    "Smith",
    "Johansson",
    "Dubois",
    "Rossi",
    "Tanaka",
    "佐藤",
    "김",
    "Okafor",
    "Fernández",
    "Schäfer",
    "D'Angelo",
    "Ølstad",
    "Papadopoulos",
    "Ivanova",
    "van der Berg",
    "Łukasiewicz",
    "Çelik",
    "Haddad",
    "Silva",
];
pub const COMPANIES: &[&str] = &[
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella \"Bio\" Labs",
    "Stark Industries",
    "Wayne Enterprises",
    "Société Générale",
    "株式会社テスト",
    "Müller & Söhne GmbH",
    "Back\\slash Ltd",
    "Hooli",
    "Pied Piper 🚀",
    "Vandelay Industries",
    "Soylent",
];
pub const TITLES: &[&str] = &[
    "Software Engineer",
    "Senior Data Engineer",
    "Product Manager",
    "Recruiter",
    "Account Executive",
    "Designer (UX/UI)",
    "Directeur financier",
    "エンジニア",
    "VP, Engineering",
    "Staff SRE",
    "Sales Development Rep",
    "Head of People",
];
pub const WORDS: &[&str] = &[
    "candidate",
    "strong",
    "communication",
    "système",
    "team",
    "café",
    "résumé",
    "pipeline",
    "offer",
    "follow-up",
    "面接",
    "great",
    "culture",
    "naïve",
    "über",
    "feedback",
    "🎉",
    "\"quoted\"",
    "back\\slash",
    "interview",
    "schedule",
    "coding",
    "design",
    "références",
];
pub const TIME_ZONES: &[&str] = &[
    "Eastern Time (US & Canada)",
    "Pacific Time (US & Canada)",
    "London",
    "Berlin",
    "Tokyo",
    "Sydney",
    "Mumbai",
    "UTC",
];
pub const CITIES: &[&str] = &[
    "New York, NY",
    "San Francisco, CA",
    "London, UK",
    "Berlin, Germany",
    "Tōkyō, Japan",
    "São Paulo, Brazil",
    "Zürich, Switzerland",
    "Remote",
    "Montréal, QC",
    "Dublin, Ireland",
];
pub const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "People",
    "Legal",
    "Customer Success",
    "Research & Development",
    "Opérations",
    "デザイン",
    "Data",
    "Security",
];
pub const STAGES: &[&str] = &[
    "Application Review",
    "Preliminary Phone Screen",
    "Phone Interview",
    "Take Home Test",
    "Face to Face",
    "Reference Check",
    "Offer",
];
pub const SCHOOLS: &[&str] = &[
    "Massachusetts Institute of Technology",
    "Université de Montréal",
    "東京大学",
    "ETH Zürich",
    "Universidad de Buenos Aires",
    "University of Oxford",
    "Stanford University",
    "Technische Universität München",
    "Seoul National University",
    "Indian Institute of Technology",
    "Universität Wien",
    "École Polytechnique",
    "University of Cape Town",
    "北京大学",
];
pub const DEGREES: &[&str] = &[
    "High School",
    "Associate's Degree",
    "Bachelor's Degree",
    "Master's Degree",
    "Master of Business Administration (M.B.A.)",
    "Juris Doctor (J.D.)",
    "Doctor of Medicine (M.D.)",
    "Doctor of Philosophy (Ph.D.)",
    "Engineer's Degree",
    "Other",
];
pub const DISCIPLINES: &[&str] = &[
    "Computer Science",
    "Mathematics",
    "Economics",
    "Mechanical Engineering",
    "Biology",
    "Philosophy",
    "Statistics",
    "Psychology",
    "Électronique",
    "Design",
    "Physics",
    "Law",
];

/// "First Last" style person name parts.
pub fn person(r: &mut Rng) -> (&'static str, &'static str) {
    (r.pick(FIRST), r.pick(LAST))
}

/// A sentence of `n` words, sometimes with a newline and a tab.
pub fn sentence(r: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n * 9);
    for i in 0..n {
        if i > 0 {
            s.push(if r.below(12) == 0 { '\n' } else { ' ' });
        }
        s.push_str(r.pick(WORDS));
    }
    s
}

/// Simple HTML with paragraphs and a list; `long` produces several KB.
pub fn html(r: &mut Rng, long: bool) -> String {
    let paras = if long {
        12 + r.below(20) as usize
    } else {
        1 + r.below(3) as usize
    };
    let mut s = String::with_capacity(paras * 200);
    for p in 0..paras {
        s.push_str("<p>");
        let n = 8 + r.below(20) as usize;
        s.push_str(&sentence(r, n));
        s.push_str("</p>");
        if p % 4 == 1 {
            s.push_str("<ul><li><strong>Responsibilités</strong> &amp; growth</li><li>Ship \"quality\" code — 品質</li></ul>");
        }
    }
    s
}

/// A slug usable in e-mail addresses and URLs (ASCII only).
pub fn slug(s: &str) -> String {
    let out: String = s
        .chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() {
                Some(c.to_ascii_lowercase())
            } else {
                None
            }
        })
        .collect();
    if out.is_empty() { "x".to_string() } else { out }
}
