import NIOSSL

/// A TLS file of a sink, parsed as the sink will load it: a readable file that is no PEM, or
/// holds no certificate, would otherwise fail only when the sink connects.
enum TLSFile {
    enum Content { case certificates, privateKey }

    /// What is wrong with the PEM file at `path`; nil when it holds what it should.
    static func problem(_ path: String, _ content: Content) -> String? {
        do {
            switch content {
            case .certificates:
                if try NIOSSLCertificate.fromPEMFile(path).isEmpty { return "no certificate in \(path)" }
            case .privateKey:
                _ = try NIOSSLPrivateKey(file: path, format: .pem)
            }
            return nil
        } catch {
            return "not a PEM \(content == .certificates ? "certificate" : "private key") (\(path)): \(error)"
        }
    }
}
