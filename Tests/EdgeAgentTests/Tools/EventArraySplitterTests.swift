import EdgeAgent
import EdgeAgentTools
import Testing

@Suite struct EventArraySplitterTests {
    @Test func keepsEachEventsTextAndReadsItsIdentity() throws {
        let body =
            #"[{"id":"a-1","source":"/s/1","data":{"id":"inner","x":[1,{"y":"}"}]}} , {"source":"/s/2","id":"b\"2"}]"#
        let items = try EventArraySplitter.split(Array(body.utf8))
        #expect(items.map(\.id) == ["a-1", #"b\"2"#])
        #expect(items.map(\.source) == ["/s/1", "/s/2"])
        #expect(items[0].text == #"{"id":"a-1","source":"/s/1","data":{"id":"inner","x":[1,{"y":"}"}]}}"#)
        #expect(try EventArraySplitter.split(Array("[]".utf8)).isEmpty)
    }

    @Test(arguments: [
        #"{"id":"a"}"#, #"[{"id":"a"}]"#, #"[{"id":"a","source":"s"}"#, #"[{"id":"a","source":"s"}] x"#, "not json",
    ])
    func rejectsMalformedBatches(_ body: String) {
        #expect(throws: EventArraySplitter.Malformed.self) { try EventArraySplitter.split(Array(body.utf8)) }
    }
}
