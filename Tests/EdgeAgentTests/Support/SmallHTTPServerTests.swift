import EdgeAgent
import EdgeAgentCore
import Testing

/// Closing the server (the reference receiver, the status endpoint) while a request is handled.
@Suite struct SmallHTTPServerTests {
    /// The answer to a request in flight reaches the client before the server's event loop stops:
    /// before, the loop stopped under the handler, the client's connection dropped and the
    /// handler's answer was scheduled on a loop that had shut down (NIO's warning).
    @Test func closingAnswersTheRequestInFlightFirst() async throws {
        let (entered, handlerEntered) = AsyncStream.makeStream(of: Void.self)
        let (released, releaseHandler) = AsyncStream.makeStream(of: Void.self)
        let server = try await SmallHTTPServer(listen: HostPort("127.0.0.1:0")!) { _ in
            handlerEntered.yield()
            for await _ in released { break }
            return .init(.ok, "{}", contentType: "application/json")
        }
        let client = try HTTPSink(.init(url: "http://127.0.0.1:\(server.port)/v1/events"))
        async let outcome = client.deliver([])
        for await _ in entered { break }

        async let closed: Void = server.close()
        // The server stops accepting first; the request in flight is still being handled.
        let deadline = ContinuousClock.now + .seconds(30)
        while await client.probe(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await !client.probe(), "the server still accepts connections while closing")
        releaseHandler.yield()

        #expect(await outcome == .delivered)
        await closed
        await client.shutdown()
    }
}
