import Foundation
import Hummingbird
import Tidepool

extension API {
    /// `POST /v1/collections/{name}/query`: one vector, a batch, text (BM25) or hybrid. The
    /// answer is bounded by `limits`: batch × k hits, and vector components when vectors are included.
    func query(_ coll: Tidepool.Collection, _ b: [String: JSONValue], deadline: Deadline) throws -> [String: Any] {
        let k = Int(try int(b, "k", default: 10))
        let ef = try b["ef"].map { v -> Int in
            guard case .int(let i) = v else { throw APIError.badRequest("'ef' must be an integer") }; return Int(i)
        }
        let rerank = try b["rerank"].map { v -> Int in
            guard case .int(let i) = v else { throw APIError.badRequest("'rerank' must be an integer") }; return Int(i)
        }
        let nprobe = try b["nprobe"].map { v -> Int in
            guard case .int(let i) = v, (1...1_048_576).contains(i) else {
                throw APIError.badRequest("'nprobe' must be an integer in 1...1048576")
            }
            return Int(i)
        }
        let include = try stringList(b["include"] ?? .array([]), "include")
        for i in include where i != "attributes" && i != "vectors" {
            throw APIError.badRequest("'include' accepts \"attributes\" and \"vectors\", not '\(i)'")
        }
        let encoding = try VectorEncoding(b)
        let f = try b["filter"].map(filter)
        let asOf = try asOfSelector(b["as_of"])
        let text: String? = try b["text"].map { v in
            guard case .string(let s) = v else { throw APIError.badRequest("'text' must be a string") }; return s
        }
        let match =
            try TextMatch(rawValue: string(b, "text_match", default: "any"))
            ?? { throw APIError.badRequest("'text_match' must be any, all or phrase") }()
        var vectors: [[Float]] = []
        if let v = b["vector"] { vectors.append(try floatVector(v)) }
        if let v = b["vector_b64"] { vectors.append(try base64Vector(v)) }
        if case .array(let vs)? = b["vectors"] {
            vectors += try vs.map(floatVector)
        } else if b["vectors"] != nil {
            throw APIError.badRequest("'vectors' must be an array of vectors")
        }
        // A batch as base64 little-endian float32, one string a vector (no float text to parse).
        if case .array(let vs)? = b["vectors_b64"] {
            guard b["vectors"] == nil else { throw APIError.badRequest("give 'vectors' or 'vectors_b64', not both") }
            vectors += try vs.map { try base64Vector($0, field: "vectors_b64") }
        } else if b["vectors_b64"] != nil {
            throw APIError.badRequest("'vectors_b64' must be an array of base64 strings")
        }
        guard vectors.count <= 1024 else { throw APIError.badRequest("at most 1024 vectors per request") }
        let hits = max(1, vectors.count) * max(0, k)
        try limits.check(results: hits, vectors: include.contains("vectors") ? hits * coll.dimension : 0)
        let batch = b["vectors"] != nil || b["vectors_b64"] != nil
        var results: [[[String: Any]]] = []
        var textCost = SearchCost()
        if let text {
            guard vectors.count <= 1 else { throw APIError.badRequest("text and hybrid queries take one vector at most") }
            if let v = vectors.first {
                let fusion: Fusion
                switch try string(b, "fusion", default: "rrf") {
                case "rrf": fusion = .reciprocalRank()
                case "weighted": fusion = .weighted(vectorWeight: try double(b, "vector_weight", default: 0.5))
                default: throw APIError.badRequest("'fusion' must be rrf or weighted")
                }
                var options = HybridOptions(
                    fusion: fusion, candidates: Int(try int(b, "candidates", default: 100)), ef: ef, filter: f, match: match,
                    includeAttributes: include.contains("attributes"), deadline: deadline)
                options.asOf = asOf
                let (hits, cost) = try coll.hybridSearchWithCost(vector: v, text: text, k: k, options: options)
                textCost = cost
                results.append(
                    hits.map { h in
                        var o: [String: Any] = ["id": idJSON(h.id), "score": h.score]
                        o["vector_rank"] = h.vectorRank.map { $0 as Any } ?? NSNull()
                        o["vector_distance"] = h.vectorDistance.map { Double($0) as Any } ?? NSNull()
                        o["text_rank"] = h.textRank.map { $0 as Any } ?? NSNull()
                        o["text_score"] = h.textScore.map { $0 as Any } ?? NSNull()
                        if let a = h.attributes { o["attributes"] = attributesJSON(a) }
                        return o
                    })
            } else {
                var options = TextSearchOptions(
                    match: match, filter: f, includeAttributes: include.contains("attributes"), deadline: deadline)
                options.asOf = asOf
                let (hits, cost) = try coll.textSearchWithCost(text, k: k, options: options)
                textCost = cost
                results.append(
                    hits.map { h in
                        var o: [String: Any] = ["id": idJSON(h.id), "score": h.score]
                        if let a = h.attributes { o["attributes"] = attributesJSON(a) }
                        return o
                    })
            }
        } else {
            guard !vectors.isEmpty else { throw APIError.badRequest("give 'vector', 'vector_b64', 'vectors' or 'text'") }
            let options = SearchOptions(
                ef: ef, exact: try bool(b, "exact", default: false), includeAttributes: include.contains("attributes"),
                includeVectors: include.contains("vectors"), maxThreads: 1, filter: f, rerank: rerank, nprobe: nprobe,
                deadline: deadline, asOf: asOf)
            // An exact batch is one pass over the rows for all its vectors (Collection.search(vectors:)).
            let r = try coll.search(vectors: vectors, k: k, options: options)
            let lists = r.hits.map { RawJSON.hits($0, vectors: encoding) }
            return ["results": batch ? lists : lists[0], "cost": costJSON(r.cost)]
        }
        return ["results": results.first ?? [], "cost": costJSON(textCost)]
    }
}
