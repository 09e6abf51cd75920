import Foundation
import XMLCoder

/// The XML bodies S3 answers with and the one it is sent, decoded and encoded by XMLCoder.
enum S3XML {
    /// `ListObjectsV2`'s answer.
    struct ListBucketResult: Decodable {
        struct Contents: Decodable {
            var key: String
            var size: Int
            var eTag: String?
            enum CodingKeys: String, CodingKey {
                case key = "Key", size = "Size", eTag = "ETag"
            }
        }
        struct CommonPrefix: Decodable {
            var prefix: String
            enum CodingKeys: String, CodingKey { case prefix = "Prefix" }
        }
        var isTruncated: Bool
        var contents: [Contents]?
        var commonPrefixes: [CommonPrefix]?
        var nextContinuationToken: String?
        enum CodingKeys: String, CodingKey {
            case isTruncated = "IsTruncated", contents = "Contents", commonPrefixes = "CommonPrefixes"
            case nextContinuationToken = "NextContinuationToken"
        }
    }

    /// An error answer: `<Error><Code>…</Code><Message>…</Message></Error>`.
    struct ErrorBody: Decodable {
        var code: String?
        var message: String?
        enum CodingKeys: String, CodingKey {
            case code = "Code", message = "Message"
        }
    }

    struct InitiateMultipartUploadResult: Decodable {
        var uploadId: String
        enum CodingKeys: String, CodingKey { case uploadId = "UploadId" }
    }

    struct CompleteMultipartUpload: Encodable {
        struct Part: Encodable {
            var partNumber: Int
            var eTag: String
            enum CodingKeys: String, CodingKey {
                case partNumber = "PartNumber", eTag = "ETag"
            }
        }
        var parts: [Part]
        enum CodingKeys: String, CodingKey { case parts = "Part" }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        let decoder = XMLDecoder()
        decoder.shouldProcessNamespaces = true
        return try decoder.decode(type, from: Data(bytes))
    }

    static func encodeCompletion(_ parts: [CompleteMultipartUpload.Part]) throws -> [UInt8] {
        let encoder = XMLEncoder()
        return [UInt8](try encoder.encode(CompleteMultipartUpload(parts: parts), withRootKey: "CompleteMultipartUpload"))
    }
}
