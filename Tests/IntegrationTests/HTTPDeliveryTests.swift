import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// The built agent, a generated event stream, a real HTTP server that misbehaves on request.
    /// After each fault every accepted event arrives, in order, with one id and one content.
    @Suite struct HTTPDeliveryTests {
        /// Runs the agent until the receiver has every event but the dead-lettered ones; returns what it saw.
        func deliverAll(
            _ agent: AgentHarness, _ server: FaultServer, events: Int, dead: Int = 0,
            timeout: Duration = .seconds(60)
        ) async throws -> DeliveryCheck {
            var check = DeliveryCheck([])
            let done = await eventually(timeout: timeout, every: .milliseconds(200)) {
                check = DeliveryCheck((try? await server.received().events) ?? [])
                return check.uniqueIDs.count == events + 1 - dead  // + the outbox.created event
            }
            #expect(done, "receiver has \(check.uniqueIDs.count) of \(events + 1 - dead) events")
            #expect(check.inOrder, "events arrived out of sequence order")
            #expect(check.idsWithTwoContents.isEmpty, "ids with two contents: \(check.idsWithTwoContents)")
            let outbox = try agent.outboxEvents()
            #expect(outbox.map(\.sequence) == Array(1...Int64(events + 1)), "outbox sequence has a gap")
            return check
        }

        @Test func deliversEverythingAfterTheSinkWasDownForAWhile() async throws {
            let dir = TemporaryDirectory()
            let port = freePort()
            let agent = AgentHarness(sinkURL: "http://127.0.0.1:\(port)/v1/events")
            try agent.start(events: 3000, rate: 2000)
            let backlog = await eventually(timeout: .seconds(20)) {
                ((try? await agent.status().sinks["mw"]?.pending) ?? 0) >= 3001
            }
            #expect(backlog, "the outbox should hold the whole stream while the sink is down")
            try await Task.sleep(for: .seconds(2))  // the sink stays down a while longer
            let server = try await FaultServer(directory: dir, port: port)
            _ = try await deliverAll(agent, server, events: 3000)
            // The last batch is settled once its response is in (after the receiver recorded it).
            #expect(
                await eventually {
                    let status = try? await agent.status()
                    return status?.sinks["mw"]?.pending == 0 && status?.sinks["mw"]?.delivered == 3001
                })
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        @Test func retriesServerErrorsResetsAndTooLargeBatches() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            try await server.control(
                #"{"faults": [{"status": 500, "count": 4}, {"status": 503, "count": 2}, {"status": 413, "count": 3}], "reset": 2}"#
            )
            let agent = AgentHarness(sinkURL: server.url)
            try agent.start(events: 2000)
            _ = try await deliverAll(agent, server, events: 2000)
            let posts = try await server.received().posts
            #expect(posts.filter { $0.status == 500 || $0.status == 503 }.count == 6)
            #expect(posts.contains { $0.status == 0 }, "the connection resets were seen")
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        @Test func honoursRetryAfterOn429() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            try await server.control(#"{"faults": [{"status": 429, "count": 1, "retry_after": "2"}]}"#)
            let agent = AgentHarness(sinkURL: server.url)
            try agent.start(events: 500)
            _ = try await deliverAll(agent, server, events: 500)
            let posts = try await server.received().posts
            let throttled = try #require(posts.firstIndex { $0.status == 429 })
            let next = try #require(posts.indices.first { $0 > throttled })
            #expect(posts[next].t - posts[throttled].t >= 1.9, "the agent came back before Retry-After: 2 had passed")
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        @Test func deadLettersThePoisonEventAndDeliversTheRest() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            try await server.control(#"{"poison": [777]}"#)
            let agent = AgentHarness(sinkURL: server.url)
            try agent.start(events: 1500, batch: 500)
            let check = try await deliverAll(agent, server, events: 1500, dead: 1)
            let poison = try #require(try agent.outboxEvents().first { $0.body.contains(#""value":777,"#) })
            #expect(!check.uniqueIDs.contains(poison.id))
            let dead = try await agent.command(["outbox", "dead", "list"])
            #expect(dead.status == 0)
            #expect(
                dead.stdout.contains(poison.id) && dead.stdout.contains("status=422")
                    && dead.stdout.contains("poison event"),
                "dead list: \(dead.stdout)")
            #expect(try await agent.status().sinks["mw"]?.dead == 1)

            // The receiver is fixed; the operator retries the dead letter and the running agent sends it.
            try await server.control(#"{"poison": []}"#)
            #expect(try await agent.command(["outbox", "dead", "retry"]).stdout.contains("re-queued 1"))
            let retried = await eventually(timeout: .seconds(10)) {
                DeliveryCheck((try? await server.received().events) ?? []).uniqueIDs.contains(poison.id)
            }
            #expect(retried)
            #expect(try await agent.status().sinks["mw"]?.dead == 0)
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        @Test func keepsRetryingOn401WithoutDeadLettering() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            try await server.control(#"{"token": "right-token"}"#)
            let tokenFile = dir.write("token", "wrong-token\n")
            let agent = AgentHarness(sinkURL: server.url, extraSink: ", bearer_token_file: \(tokenFile)")
            try agent.start(events: 300)
            let refused = await eventually(timeout: .seconds(10)) {
                ((try? await server.received().posts) ?? []).filter { $0.status == 401 }.count >= 3
            }
            #expect(refused)
            #expect(
                await eventually {
                    let status = try? await agent.status()
                    return status?.sinks["mw"]?.dead == 0 && status?.sinks["mw"]?.pending == 301
                }, "every event pending, none dead")
            #expect(agent.child?.stderr.contains("check its URL and credentials") == true)
            // The middleware's key is rotated to the one the agent has: delivery resumes on its own.
            try await server.control(#"{"token": "wrong-token"}"#)
            _ = try await deliverAll(agent, server, events: 300)
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        @Test func replayResendsDeliveredEventsWithTheirOwnIDs() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            let agent = AgentHarness(sinkURL: server.url)
            try agent.start(events: 400)
            _ = try await deliverAll(agent, server, events: 400)
            let replay = try await agent.command(["outbox", "replay", "--sink", "mw", "--since", "1h"])
            #expect(
                replay.status == 0 && replay.stdout.contains("re-queued 401 events"), "\(replay.stdout)\(replay.stderr)"
            )
            let resent = await eventually(timeout: .seconds(15)) {
                ((try? await server.received().events.count) ?? 0) == 802
            }
            #expect(resent, "the running agent sends the replay without new events arriving")
            let check = DeliveryCheck(try await server.received().events)
            #expect(
                check.uniqueIDs.count == 401 && check.idsWithTwoContents.isEmpty, "a replayed event is the same event")
            #expect(try await agent.command(["outbox", "replay", "--sink", "nope", "--since", "1h"]).status == 64)
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        @Test func rateLimitPacesTheDrain() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            let agent = AgentHarness(sinkURL: server.url, sinkLines: "    rate_limit: 500/s")
            try agent.start(events: 1500, batch: 500)
            _ = try await deliverAll(agent, server, events: 1500)
            let accepted = try await server.received().posts.filter { $0.status == 200 }
            // 1,501 events at 500/s with a burst of 500: at least two seconds from first to last batch.
            let span = try #require(accepted.last).t - (try #require(accepted.first)).t
            #expect(span >= 1.8, "drained 1501 events in \(span) s despite rate_limit 500/s")
            #expect(await agent.stop() == 0)
            await server.stop()
        }
    }
}
