import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// HTTPS with the plant's own CA and a client certificate (mTLS), and the configured headers.
    @Suite struct TLSDeliveryTests {
        /// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
        static func makeCertificates(in dir: TemporaryDirectory) async throws -> (
            ca: String, serverCert: String, serverKey: String,
            clientCert: String, clientKey: String, otherCA: String
        ) {
            dir.write("san.cnf", "subjectAltName=IP:127.0.0.1\n")
            let steps: [[String]] = [
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days",
                    "2", "-subj", "/CN=plant CA",
                ],
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem",
                    "-days", "2", "-subj", "/CN=other CA",
                ],
                [
                    "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
                    "/CN=127.0.0.1",
                ],
                [
                    "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
                    "server.pem",
                    "-days", "2", "-extfile", "san.cnf",
                ],
                [
                    "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj",
                    "/CN=line7-edge",
                ],
                [
                    "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
                    "client.pem", "-days", "2",
                ],
            ]
            for step in steps {
                let result = try await runToEnd(
                    "/usr/bin/openssl",
                    step.map {
                        $0.hasSuffix(".key") || $0.hasSuffix(".pem") || $0.hasSuffix(".csr")
                            || $0.hasSuffix(".cnf") ? dir.file($0) : $0
                    }, directory: dir)
                guard result.status == 0 else { throw TestFailure("openssl \(step[0]) failed: \(result.stderr)") }
            }
            return (
                dir.file("ca.pem"), dir.file("server.pem"), dir.file("server.key"), dir.file("client.pem"),
                dir.file("client.key"),
                dir.file("other.pem")
            )
        }

        @Test func deliversOverMutualTLSWithTheConfiguredHeaders() async throws {
            let dir = TemporaryDirectory()
            let certs = try await Self.makeCertificates(in: dir)
            let server = try await FaultServer(directory: dir, tls: (certs.serverCert, certs.serverKey, certs.ca))
            let agent = AgentHarness(
                sinkURL: server.url,
                extraSink: """
                    , tls: { ca_file: \(certs.ca), cert_file: \(certs.clientCert), key_file: \(certs.clientKey) }, \
                    headers: { X-Api-Key: "${TEST_API_KEY}" }
                    """)
            try agent.start(events: 1000, environment: ["TEST_API_KEY": "key-42"])
            let delivered = await eventually(timeout: .seconds(30)) {
                DeliveryCheck((try? await server.received().events) ?? []).uniqueIDs.count == 1001
            }
            #expect(delivered)
            let posts = try await server.received().posts.filter { $0.status == 200 }
            #expect(!posts.isEmpty && posts.allSatisfy { $0.headers["X-Api-Key"] == "key-42" })
            #expect(posts.allSatisfy { $0.headers["Content-Type"] == "application/cloudevents-batch+json" })
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        @Test func refusesAServerItsCADoesNotTrustAndKeepsEverything() async throws {
            let dir = TemporaryDirectory()
            let certs = try await Self.makeCertificates(in: dir)
            let server = try await FaultServer(directory: dir, tls: (certs.serverCert, certs.serverKey, certs.ca))
            let agent = AgentHarness(sinkURL: server.url, extraSink: ", tls: { ca_file: \(certs.otherCA) }")
            try agent.start(events: 200)
            let failing = await eventually(timeout: .seconds(15)) {
                agent.child?.stderr.contains("Sink is failing") == true
            }
            #expect(failing)
            // Every event ends up pending (the first refusal may come before the last is appended).
            #expect(
                await eventually {
                    let status = try? await agent.status()
                    return status?.sinks["mw"]?.pending == 201 && status?.sinks["mw"]?.dead == 0
                })
            #expect(try await server.received().events.isEmpty)
            #expect(await agent.stop() == 0)
            await server.stop()
        }
    }
}
