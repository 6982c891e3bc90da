import CCrypto

/// SHA-256 of a historian file's bytes, streamed (a file's identity, SPEC 7), through libcrypto:
/// its code uses the CPU's SHA instructions where there are any, several times the speed of the
/// core's `SHA256`, and a file is hashed twice per ingest (pass one whole, pass two per block).
/// The digests are the same as `SHA256`'s (lowercase hex). libcrypto fails here only without
/// memory, which stops the agent.
final class FileSHA256 {
    private let context: OpaquePointer
    /// Where a digest of the bytes so far is finished, so the hash itself goes on.
    private let copy: OpaquePointer

    init() {
        guard let context = EVP_MD_CTX_new(), let copy = EVP_MD_CTX_new() else {
            preconditionFailure("libcrypto: no memory for a SHA-256 context")
        }
        self.context = context
        self.copy = copy
        precondition(EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1, "libcrypto: SHA-256 did not start")
    }

    deinit {
        EVP_MD_CTX_free(context)
        EVP_MD_CTX_free(copy)
    }

    func update(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let start = bytes.baseAddress, !bytes.isEmpty else { return }
        precondition(EVP_DigestUpdate(context, start, bytes.count) == 1, "libcrypto: SHA-256 update failed")
    }

    /// The digest of the bytes so far, as 64 lowercase hex digits; more bytes may follow.
    func digest() -> String {
        precondition(EVP_MD_CTX_copy_ex(copy, context) == 1, "libcrypto: SHA-256 context not copied")
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(copy, &digest, &length) == 1 && length == 32, "libcrypto: SHA-256 failed")
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in digest {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
