// Prints the plain closing line "N passed, N failed, N skipped" after Jest's own summary, so any
// CI reader can tell how many tests ran without knowing Jest's output format.
// (stderr, like Jest's own summary, so the line comes last when both streams are captured together.)
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    process.stderr.write(
      `\nTests: ${results.numPassedTests} passed, ${failed} failed, ${results.numPendingTests} skipped\n`,
    );
  }
}
module.exports = SummaryReporter;
