import Testing

@testable import EdgeAgent

/// Where a historian folder's files resume: each content after its own committed rows.
@Suite struct HistorianProgressTests {
    @Test func eachFileResumesAfterItsOwnRowsAndTheOlderFolderRowIsRead() {
        let stored = [
            "historian.pi.file.aa": "40000", "historian.pi.file.bb": "20000", "historian.pi": "cc 10000",
            "historian.pi2.file.dd": "5", "rules.machine.press-1": "{}",
        ]
        let progress = HistorianIngestor.Progress(stored, prefix: "historian.pi.file.", folderKey: "historian.pi")
        #expect(progress.rows == ["aa": 40000, "bb": 20000, "cc": 10000])
        #expect(progress.folderKeyHash == "cc")
    }
}
