package org.peft4j.train;

import org.peft4j.core.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The metrics of a run as CSV ({@code metrics.csv}): a row per logged step, with the evaluation
 * columns filled on evaluation steps. A resumed run keeps the rows up to its checkpoint.
 */
public final class MetricsLog {

    /** The file name. */
    public static final String FILE = "metrics.csv";

    private static final String HEADER =
            "step,epoch,learning_rate,loss,perplexity,accuracy,grad_norm,tokens_per_second,"
                    + "eval_loss,eval_perplexity,eval_accuracy";

    private final Path file;
    private final List<String> rows = new ArrayList<>();
    private final List<LossCurve.Point> train = new ArrayList<>();
    private final List<LossCurve.Point> eval = new ArrayList<>();

    /**
     * Opens the log of an output directory, keeping earlier rows up to a step.
     *
     * @param dir the run's output directory
     * @param keepUpTo the last step whose rows are kept (the resumed checkpoint's), or -1
     * @throws IOException if an existing log cannot be read
     */
    public MetricsLog(Path dir, int keepUpTo) throws IOException {
        this.file = dir.resolve(FILE);
        if (keepUpTo >= 0 && Files.isRegularFile(file)) {
            List<String> lines = Files.readAllLines(file);
            for (String line : lines.subList(Math.min(1, lines.size()), lines.size())) {
                String[] cells = line.split(",", -1);
                if (cells.length == 11 && Integer.parseInt(cells[0]) <= keepUpTo) {
                    rows.add(line);
                    if (!cells[3].isEmpty()) {
                        train.add(
                                new LossCurve.Point(
                                        Integer.parseInt(cells[0]), Double.parseDouble(cells[3])));
                    }
                    if (!cells[8].isEmpty()) {
                        eval.add(
                                new LossCurve.Point(
                                        Integer.parseInt(cells[0]), Double.parseDouble(cells[8])));
                    }
                }
            }
        }
    }

    /**
     * Adds a row.
     *
     * @param step the step
     * @param epoch the epoch (fractional)
     * @param learningRate the step's rate
     * @param trainMetrics training metrics since the last row, or {@code null}
     * @param gradNorm the gradient norm before clipping
     * @param tokensPerSecond the throughput
     * @param evalMetrics evaluation metrics, or {@code null}
     */
    public void add(
            int step,
            double epoch,
            double learningRate,
            Metrics trainMetrics,
            double gradNorm,
            double tokensPerSecond,
            Metrics evalMetrics) {
        StringBuilder row = new StringBuilder();
        row.append(step).append(',').append(format(epoch)).append(',');
        row.append(String.format(Locale.ROOT, "%.6g", learningRate)).append(',');
        if (trainMetrics != null) {
            row.append(format(trainMetrics.loss())).append(',');
            row.append(format(trainMetrics.perplexity())).append(',');
            row.append(format(trainMetrics.accuracy())).append(',');
            train.add(new LossCurve.Point(step, trainMetrics.loss()));
        } else {
            row.append(",,,");
        }
        row.append(format(gradNorm)).append(',').append(format(tokensPerSecond)).append(',');
        if (evalMetrics != null) {
            row.append(format(evalMetrics.loss())).append(',');
            row.append(format(evalMetrics.perplexity())).append(',');
            row.append(format(evalMetrics.accuracy()));
            eval.add(new LossCurve.Point(step, evalMetrics.loss()));
        } else {
            row.append(",,");
        }
        rows.add(row.toString());
    }

    /**
     * Writes the CSV and the loss curve ({@code loss.svg}) next to it, atomically.
     *
     * @throws IOException if writing fails
     */
    public void flush() throws IOException {
        AtomicFiles.writeString(file, HEADER + '\n' + String.join("\n", rows) + '\n');
        LossCurve.write(file.resolveSibling("loss.svg"), train, eval);
    }

    private static String format(double value) {
        return Double.isNaN(value) ? "" : String.format(Locale.ROOT, "%.6g", value);
    }
}
