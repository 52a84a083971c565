//! The synthetic data's vocabulary and its deterministic PRNG, shared by `bench/server`'s
//! dump generator and `bench/online`'s SQLite generator, so both benchmarks hold the same kind
//! of rows (names, e-mail domains, JSON event kinds, URL paths, prose, MIME types).

pub const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Tim",
    "Shafi",
    "Leslie",
    "Sophie",
    "John",
    "Katherine",
    "Linus",
    "Hedy",
    "Niklaus",
    "Joan",
    "Ivan",
    "Anita",
    "Bjarne",
    "Mary",
    "Guido",
    "Adele",
    "Yukihiro",
];
pub const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Berners-Lee",
    "Goldwasser",
    "Lamport",
    "Wilson",
    "McCarthy",
    "Johnson",
    "Torvalds",
    "Lamarr",
    "Wirth",
    "Clarke",
    "Sutherland",
    "Borg",
    "Stroustrup",
    "Keller",
    "van Rossum",
    "Goldberg",
    "Matsumoto",
    "O'Neil",
];
pub const COUNTRIES: &[&str] = &[
    "US", "GB", "DE", "FR", "JP", "BR", "IN", "PL", "AR", "NL", "SE",
];
pub const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "corp.example",
];
pub const KINDS: &[&str] = &[
    "page_view",
    "click",
    "signup",
    "login",
    "logout",
    "purchase",
    "search",
    "error",
];
pub const PATHS: &[&str] = &[
    "/",
    "/products",
    "/products/item",
    "/cart",
    "/checkout",
    "/account",
    "/blog/post",
    "/search",
    "/help/faq",
];
pub const WORDS: &[&str] = &[
    "the", "a", "backup", "database", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
    "server", "request", "export", "night", "data", "stream", "bucket", "object", "and", "of",
    "to", "in", "is", "it's", "with", "for", "on", "that", "this", "river", "mountain", "coffee",
    "morning", "release", "weekly", "report", "sunny", "garden",
];
pub const MIMES: &[&str] = &["image/png", "image/jpeg", "application/pdf", "text/plain"];

/// xorshift64*: fast, deterministic, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// `words` random words and a full stop.
pub fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s.push('.');
    s
}

/// A random ISO 8601 UTC timestamp in 2020–2025.
pub fn timestamp(rng: &mut Rng) -> String {
    format!(
        "202{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        rng.below(6),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}
