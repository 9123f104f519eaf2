package org.peft4j.train;

import org.peft4j.core.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Draws training and evaluation loss against steps as a small standalone SVG picture, which any
 * browser shows.
 */
public final class LossCurve {

    private static final int W = 640;
    private static final int H = 360;
    private static final int PAD = 48;

    private LossCurve() {}

    /**
     * A point of a curve.
     *
     * @param step the step
     * @param loss the loss at that step
     */
    public record Point(int step, double loss) {}

    /**
     * Writes the picture.
     *
     * @param file the SVG file to write (atomically)
     * @param train training loss by step
     * @param eval evaluation loss by step (may be empty)
     * @throws IOException if writing fails
     */
    public static void write(Path file, List<Point> train, List<Point> eval) throws IOException {
        AtomicFiles.writeString(file, svg(train, eval));
    }

    static String svg(List<Point> train, List<Point> eval) {
        int maxStep = 1;
        double max = 0;
        double min = Double.MAX_VALUE;
        for (List<Point> curve : List.of(train, eval)) {
            for (Point p : curve) {
                maxStep = Math.max(maxStep, p.step());
                max = Math.max(max, p.loss());
                min = Math.min(min, p.loss());
            }
        }
        if (min > max) {
            min = 0;
            max = 1;
        }
        min = Math.max(0, min - 0.05 * (max - min));
        double top = max + 0.05 * (max - min) + 1e-9;
        StringBuilder s = new StringBuilder();
        s.append(
                String.format(
                        Locale.ROOT,
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
                                + " font-family=\"sans-serif\" font-size=\"12\">%n",
                        W,
                        H));
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        s.append(
                String.format(
                        Locale.ROOT,
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>%n<line"
                                + " x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>%n",
                        PAD,
                        H - PAD,
                        W - PAD / 2,
                        H - PAD,
                        PAD,
                        PAD / 2,
                        PAD,
                        H - PAD));
        for (int i = 0; i <= 4; i++) {
            double value = min + (top - min) * i / 4;
            int y = (int) (H - PAD - (H - 1.5 * PAD) * i / 4);
            s.append(
                    String.format(
                            Locale.ROOT,
                            "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>%n",
                            PAD - 4,
                            y + 4,
                            value));
        }
        s.append(
                String.format(
                        Locale.ROOT,
                        "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step (last %d)</text>%n",
                        W / 2,
                        H - 12,
                        maxStep));
        s.append(polyline(train, maxStep, min, top, "#1f77b4"));
        s.append(polyline(eval, maxStep, min, top, "#d62728"));
        s.append(
                String.format(
                        Locale.ROOT,
                        "<text x=\"%d\" y=\"20\" fill=\"#1f77b4\">training loss</text>%n"
                                + "<text x=\"%d\" y=\"20\" fill=\"#d62728\">eval loss</text>%n",
                        PAD + 10,
                        PAD + 130));
        s.append("</svg>\n");
        return s.toString();
    }

    private static String polyline(
            List<Point> curve, int maxStep, double min, double top, String color) {
        if (curve.isEmpty()) {
            return "";
        }
        StringBuilder points = new StringBuilder();
        for (Point p : curve) {
            double x = PAD + (W - 1.5 * PAD) * p.step() / maxStep;
            double y = H - PAD - (H - 1.5 * PAD) * (p.loss() - min) / (top - min);
            points.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
        }
        return String.format(
                Locale.ROOT,
                "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>%n",
                color,
                points.toString().trim());
    }
}
