/// Turns text into index terms: lowercase, split into runs of Unicode letters and numbers
/// (everything else, `_` included, separates), optionally drop stop words and strip common
/// English suffixes. Indexing and querying use the same analyzer, stored with the collection.
public struct TextAnalyzer: Sendable, Codable, Equatable {
    /// Light English stemming (plural and -ing/-ed suffixes).
    public var stemEnglish: Bool
    /// Words dropped after lowercasing.
    public var stopWords: [String]

    public init(stemEnglish: Bool = false, stopWords: [String] = []) {
        self.stemEnglish = stemEnglish
        self.stopWords = stopWords
    }

    /// A common English stop-word list, for `stopWords:`.
    public static let englishStopWords = [
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into",
        "is", "it", "of", "on", "or", "that", "the", "to", "with",
    ]

    public func terms(_ text: String) -> [String] {
        let stop = Set(stopWords)
        var out: [String] = []
        var current = String.UnicodeScalarView()
        func flush() {
            guard !current.isEmpty else { return }
            var t = String(current).lowercased()
            current.removeAll()
            if stop.contains(t) { return }
            if stemEnglish { t = TextAnalyzer.stem(t) }
            out.append(t)
        }
        for u in text.unicodeScalars {
            if TextAnalyzer.isWordScalar(u) { current.append(u) } else { flush() }
        }
        flush()
        return out
    }

    /// Letters (general category L*) and numbers: the definition of Python's `str.isalnum`,
    /// so that reference implementations can tokenize identically with `[^\W_]+`.
    static func isWordScalar(_ u: Unicode.Scalar) -> Bool {
        switch u.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return u.properties.numericType != nil
        }
    }

    static func stem(_ w: String) -> String {
        for (suffix, replacement) in [("sses", "ss"), ("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")] where w.hasSuffix(suffix) {
            if suffix == "s" && (w.hasSuffix("ss") || w.hasSuffix("us")) { return w }
            let stem = String(w.dropLast(suffix.count)) + replacement
            // Keep at least three letters: "dogs" → "dog", but "is" and "bed" stay.
            return stem.count >= 3 ? stem : w
        }
        return w
    }
}

/// BM25 parameters (Lucene's formula: idf = ln(1 + (N − df + 0.5) / (df + 0.5))).
public struct BM25Parameters: Sendable, Codable, Equatable {
    public var k1: Double
    public var b: Double
    public init(k1: Double = 1.2, b: Double = 0.75) { self.k1 = k1; self.b = b }
}

/// Full-text settings of a collection: which string attributes are indexed, and how.
public struct TextIndexConfig: Sendable, Codable, Equatable {
    /// String attributes whose text is indexed (concatenated, in this order, per document).
    public var fields: [String]
    public var analyzer: TextAnalyzer
    public var bm25: BM25Parameters

    public init(fields: [String], analyzer: TextAnalyzer = TextAnalyzer(), bm25: BM25Parameters = BM25Parameters()) {
        self.fields = fields
        self.analyzer = analyzer
        self.bm25 = bm25
    }

    /// The terms of a document's indexed fields.
    func terms(_ attrs: [String: AttributeValue]) -> [String] {
        var out: [String] = []
        for f in fields {
            switch attrs[f] {
            case .string(let s)?: out += analyzer.terms(s)
            case .stringArray(let a)?: for s in a { out += analyzer.terms(s) }
            default: break
            }
        }
        return out
    }
}
