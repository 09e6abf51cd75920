import Foundation

/// What an API key may do.
public struct APIKey: Sendable, Equatable {
    public enum Role: String, Sendable { case readOnly = "ro", readWrite = "rw" }
    public let secret: String
    public let role: Role
    /// Collections the key may touch; nil for all.
    public let collections: Set<String>?

    public init(secret: String, role: Role, collections: Set<String>? = nil) {
        self.secret = secret
        self.role = role
        self.collections = collections
    }

    public func allows(collection: String) -> Bool { collections?.contains(collection) ?? true }
}

/// The configured keys. Spec format, one key per line or comma-separated:
/// `SECRET:rw`, `SECRET:ro`, or `SECRET:rw:coll1|coll2` (scoped to those collections).
public struct APIKeyring: Sendable {
    public let keys: [APIKey]

    public init(keys: [APIKey]) { self.keys = keys }

    public init(spec: String) throws {
        var keys: [APIKey] = []
        for raw in spec.split(whereSeparator: { $0 == "\n" || $0 == "," }) {
            let item = raw.trimmingCharacters(in: .whitespaces)
            if item.isEmpty || item.hasPrefix("#") { continue }
            let parts = item.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, parts[0].count >= 8, let role = APIKey.Role(rawValue: parts[1]) else {
                throw APIError.badRequest("API key entry must be SECRET:ro|rw[:coll1|coll2] with a secret of at least 8 characters")
            }
            guard parts.count <= 3 else {
                throw APIError.badRequest("API key entry '\(parts[0].prefix(4))…' has more than three ':'-separated parts")
            }
            var scope: Set<String>?
            if parts.count == 3 {
                // An empty scope would be a key that can do nothing, almost surely a typo for "all".
                let names = parts[2].split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                guard !names.contains(where: \.isEmpty) else {
                    throw APIError.badRequest(
                        "API key entry '\(parts[0].prefix(4))…' has an empty collection scope (omit ':…' for all collections)")
                }
                scope = Set(names)
            }
            keys.append(APIKey(secret: parts[0], role: role, collections: scope))
        }
        self.keys = keys
    }

    /// The key matching `token`, comparing against every key in constant time per byte.
    public func lookup(_ token: String) -> APIKey? {
        let t = Array(token.utf8)
        var found: APIKey?
        for k in keys where constantTimeEqual(Array(k.secret.utf8), t) { found = k }
        return found
    }
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    let n = max(a.count, b.count)
    for i in 0..<n {
        let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
        diff |= x ^ y
    }
    return diff == 0
}
