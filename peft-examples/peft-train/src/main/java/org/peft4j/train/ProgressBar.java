package org.peft4j.train;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A progress line on standard error: {@code [=====> ] 120/500 loss 1.234 ppl 3.43 1234 tok/s ETA
 * 00:01:23}. On a terminal it redraws one line; otherwise it prints a line at each update.
 */
public final class ProgressBar {

    private static final int WIDTH = 24;

    private final PrintStream out;
    private final int total;
    private final boolean redraw;
    private final long start = System.nanoTime();
    private final int firstStep;
    private final int every;

    /**
     * Creates a bar.
     *
     * @param out where to draw (standard error)
     * @param firstStep the step the run starts at (non-zero when resuming)
     * @param total the last step
     * @param redraw whether to redraw one line (a terminal)
     * @param every without redrawing, print a line every this many steps (and at the end)
     */
    public ProgressBar(PrintStream out, int firstStep, int total, boolean redraw, int every) {
        this.out = out;
        this.firstStep = firstStep;
        this.total = total;
        this.redraw = redraw;
        this.every = Math.max(1, every);
    }

    /**
     * Shows the state after a step.
     *
     * @param step the steps done
     * @param loss the recent training loss
     * @param tokensPerSecond the recent throughput
     */
    public void update(int step, double loss, double tokensPerSecond) {
        if (!redraw && step % every != 0 && step != total) {
            return;
        }
        int filled = total == 0 ? WIDTH : (int) ((long) WIDTH * step / total);
        StringBuilder bar = new StringBuilder("[");
        for (int i = 0; i < WIDTH; i++) {
            bar.append(i < filled ? '=' : i == filled ? '>' : ' ');
        }
        bar.append(']');
        double elapsed = (System.nanoTime() - start) / 1e9;
        int done = step - firstStep;
        long eta = done == 0 ? 0 : Math.round(elapsed / done * (total - step));
        String line =
                String.format(
                        Locale.ROOT,
                        "%s %d/%d loss %.4f ppl %.3f %.0f tok/s ETA %02d:%02d:%02d",
                        bar,
                        step,
                        total,
                        loss,
                        Math.exp(loss),
                        tokensPerSecond,
                        eta / 3600,
                        eta / 60 % 60,
                        eta % 60);
        if (redraw) {
            out.print('\r' + line);
            if (step == total) {
                out.println();
            }
        } else {
            out.println(line);
        }
        out.flush();
    }

    /** Ends the line on a terminal, before other output. */
    public void breakLine() {
        if (redraw) {
            out.println();
        }
    }
}
