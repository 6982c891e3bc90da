import EdgeAgentCore
import Testing

/// Where a historian folder's files resume: each content after its own committed rows.
@Suite struct HistorianProgressTests {
    @Test func eachFileResumesAfterItsOwnRowsAndTheOlderFolderRowIsRead() {
        let stored = [
            "historian.pi.file.aa": "40000", "historian.pi.file.bb": "20000", "historian.pi": "cc 10000",
            "historian.pi2.file.dd": "5", "rules.machine.press-1": "{}",
        ]
        let progress = HistorianFileStateMachine.Progress(
            stored, prefix: "historian.pi.file.", folderKey: "historian.pi")
        #expect(progress.rows == ["aa": 40000, "bb": 20000, "cc": 10000])
        #expect(progress.folderKeyHash == "cc")
    }

    @Test func whatAFileWasWhenItWasBegunIsReadWithItsProgress() {
        let stored = [
            "historian.pi.file.aa": "40000 1200000 day 1.csv", "historian.pi.file.bb": "20000",
            "historian.pi.last": "cc 30 900 last day.csv",
        ]
        let progress = HistorianFileStateMachine.Progress(
            stored, prefix: "historian.pi.file.", folderKey: "historian.pi", lastKey: "historian.pi.last")
        #expect(progress.rows == ["aa": 40000, "bb": 20000])
        #expect(
            progress.begun == [
                .init(hash: "aa", rows: 40000, length: 1_200_000, name: "day 1.csv"),
                .init(hash: "cc", rows: 30, length: 900, name: "last day.csv", finished: true),
            ])
    }
}
