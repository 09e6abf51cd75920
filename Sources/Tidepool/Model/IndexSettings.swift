/// Compression of the vectors a graph walk reads.
public enum Quantization: String, Sendable, Codable, CaseIterable {
    /// Full-precision f32 only.
    case none
    /// 8-bit scalar codes per dimension (4× smaller); candidates re-ranked with f32.
    case sq8
    /// IEEE half precision (2× smaller, nearly exact); candidates re-ranked with f32.
    case f16
    /// Product quantization, one byte per `dimension / ivf.pqSubspaces` floats (16× smaller at
    /// the default); IVF segments only (HNSW segments under `auto` walk f32); re-ranked with f32.
    case pq
    /// RaBitQ, one bit per dimension plus 12 bytes per vector (about 32× smaller at 384-d); IVF
    /// segments only. Its error bound decides which candidates need the exact re-rank.
    case rabitq
}

/// Which index a segment gets.
public enum IndexKind: String, Sendable, Codable, CaseIterable {
    /// Per segment by size: flat below `minRowsForGraph`, HNSW below `ivf.minRows`, IVF above
    /// (thresholds measured in docs/QUANTIZATION.md).
    case auto
    /// Exact scans only.
    case flat
    case hnsw
    /// Inverted file: k-means lists, `nprobe` of them scanned per query.
    case ivf
}

/// Inverted-file parameters.
public struct IVFParameters: Sendable, Codable, Equatable {
    /// Lists per segment; `nil` picks 4·√rows.
    public var nlist: Int?
    /// Lists scanned per query by default; `nil` picks max(8, nlist / 32).
    public var nprobe: Int?
    /// PQ sub-spaces (code bytes per vector); must divide the dimension. `nil` picks dimension / 4.
    public var pqSubspaces: Int?
    /// Lloyd iterations when training the lists.
    public var iterations: Int
    /// Under `auto`, segments with at least this many rows get IVF instead of HNSW.
    public var minRows: Int

    public init(nlist: Int? = nil, nprobe: Int? = nil, pqSubspaces: Int? = nil, iterations: Int = 10, minRows: Int = 2_000_000) {
        self.nlist = nlist
        self.nprobe = nprobe
        self.pqSubspaces = pqSubspaces
        self.iterations = iterations
        self.minRows = minRows
    }

    enum CodingKeys: String, CodingKey { case nlist, nprobe, pqSubspaces, iterations, minRows }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = IVFParameters()
        self.init(
            nlist: try c.decodeIfPresent(Int.self, forKey: .nlist), nprobe: try c.decodeIfPresent(Int.self, forKey: .nprobe),
            pqSubspaces: try c.decodeIfPresent(Int.self, forKey: .pqSubspaces),
            iterations: try c.decodeIfPresent(Int.self, forKey: .iterations) ?? d.iterations,
            minRows: try c.decodeIfPresent(Int.self, forKey: .minRows) ?? d.minRows)
    }

    /// The list count for a segment of `rows` rows.
    func lists(rows: Int) -> Int { max(1, min(rows, nlist ?? Int((4 * Double(rows).squareRoot()).rounded()))) }
    /// The default probe count for `nlist` lists.
    func probes(nlist: Int) -> Int { min(nlist, nprobe ?? max(8, nlist / 32)) }

    func validate(dimension: Int?) throws {
        if let nlist {
            guard (1...1 << 20).contains(nlist) else {
                throw TidepoolError.invalidArgument("ivf nlist must be in 1...1048576, got \(nlist)")
            }
        }
        if let nprobe {
            guard (1...1 << 20).contains(nprobe) else {
                throw TidepoolError.invalidArgument("ivf nprobe must be in 1...1048576, got \(nprobe)")
            }
        }
        guard (1...100).contains(iterations) else {
            throw TidepoolError.invalidArgument("ivf iterations must be in 1...100, got \(iterations)")
        }
        guard minRows >= 1 else { throw TidepoolError.invalidArgument("ivf minRows must be >= 1, got \(minRows)") }
        if let m = pqSubspaces {
            guard m >= 1 else { throw TidepoolError.invalidArgument("ivf pqSubspaces must be >= 1, got \(m)") }
            if let dimension, dimension % m != 0 {
                throw TidepoolError.invalidArgument("ivf pqSubspaces \(m) does not divide the dimension \(dimension)")
            }
        }
    }
}

/// HNSW graph parameters.
public struct HNSWParameters: Sendable, Codable, Equatable {
    /// Links per node on upper layers (twice this on layer 0).
    public var m: Int
    /// Beam width while building.
    public var efConstruction: Int
    /// Default beam width while searching.
    public var efSearch: Int

    /// Defaults chosen so recall@10 ≥ 0.95 out of the box on real sentence embeddings.
    public init(m: Int = 32, efConstruction: Int = 200, efSearch: Int = 64) {
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
    }

    func validate() throws {
        guard (2...128).contains(m) else { throw TidepoolError.invalidArgument("HNSW m must be in 2...128, got \(m)") }
        guard (1...4096).contains(efConstruction) else {
            throw TidepoolError.invalidArgument("HNSW efConstruction must be in 1...4096, got \(efConstruction)")
        }
        guard (1...4096).contains(efSearch) else {
            throw TidepoolError.invalidArgument("HNSW efSearch must be in 1...4096, got \(efSearch)")
        }
    }
}
