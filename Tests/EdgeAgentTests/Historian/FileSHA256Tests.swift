import EdgeAgentCore
import Testing

@testable import EdgeAgent

/// libcrypto's SHA-256 of a file's bytes: the standard's digests, the core's `SHA256` digests
/// (records written before hold those), and a digest taken midway does not disturb the rest.
@Suite struct FileSHA256Tests {
    func hex(_ bytes: [UInt8]) -> String {
        let hash = FileSHA256()
        bytes.withUnsafeBufferPointer { hash.update($0) }
        return hash.digest()
    }

    @Test func matchesTheStandardsTestVectors() {
        #expect(hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func givesTheCoreSHA256sDigestOfEveryLength() {
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &random) }
        for length in 0...bytes.count {
            var core = SHA256()
            core.update(Array(bytes[..<length]))
            #expect(hex(Array(bytes[..<length])) == core.finalize(), "\(length) bytes")
        }
    }

    @Test func aDigestMidwayIsThePrefixsAndTheHashGoesOn() {
        let text = Array(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 20).utf8)
        let hash = FileSHA256()
        var prefixes: [String] = []
        var i = 0, step = 1
        while i < text.count {
            let end = min(text.count, i + step)
            text[i..<end].withUnsafeBufferPointer { hash.update($0) }
            #expect(hash.digest() == hex(Array(text[..<end])))
            prefixes.append(hash.digest())
            i = end
            step = step % 70 + 3
        }
        #expect(hash.digest() == hex(text))
        #expect(Set(prefixes).count == prefixes.count)
    }
}
