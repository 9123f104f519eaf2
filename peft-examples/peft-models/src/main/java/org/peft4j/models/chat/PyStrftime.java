package org.peft4j.models.chat;

import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.time.temporal.ChronoField;
import java.time.temporal.IsoFields;
import java.util.Locale;

/**
 * Python's {@code datetime.strftime} in the C locale (as transformers' {@code strftime_now} runs
 * it on Linux, where the directives are glibc's, including its {@code %-d} no-padding flag).
 */
final class PyStrftime {

    private PyStrftime() {}

    /**
     * Formats a time.
     *
     * @param format the Python format, e.g. {@code "%d %b %Y"}
     * @param t the time
     * @return the text
     */
    static String format(String format, ZonedDateTime t) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            boolean pad = true;
            int at = i + 1;
            if (format.charAt(at) == '-' && at + 1 < format.length()) {
                pad = false;
                at++;
            }
            String field = field(format.charAt(at), t, pad);
            if (field == null) {
                // glibc leaves an unknown directive as written
                out.append(format, i, at + 1);
            } else {
                out.append(field);
            }
            i = at;
        }
        return out.toString();
    }

    private static String field(char directive, ZonedDateTime t, boolean pad) {
        switch (directive) {
            case 'a':
                return t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.US);
            case 'A':
                return t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.US);
            case 'b':
            case 'h':
                return t.getMonth().getDisplayName(TextStyle.SHORT, Locale.US);
            case 'B':
                return t.getMonth().getDisplayName(TextStyle.FULL, Locale.US);
            case 'd':
                return number(t.getDayOfMonth(), 2, pad);
            case 'e':
                return pad ? String.format("%2d", t.getDayOfMonth()) : "" + t.getDayOfMonth();
            case 'm':
                return number(t.getMonthValue(), 2, pad);
            case 'y':
                return number(t.getYear() % 100, 2, pad);
            case 'Y':
                return Integer.toString(t.getYear());
            case 'H':
                return number(t.getHour(), 2, pad);
            case 'I':
                return number(t.getHour() % 12 == 0 ? 12 : t.getHour() % 12, 2, pad);
            case 'p':
                return t.getHour() < 12 ? "AM" : "PM";
            case 'M':
                return number(t.getMinute(), 2, pad);
            case 'S':
                return number(t.getSecond(), 2, pad);
            case 'f':
                return number(t.getNano() / 1000, 6, true);
            case 'j':
                return number(t.getDayOfYear(), 3, pad);
            case 'w':
                return Integer.toString(t.getDayOfWeek().getValue() % 7);
            case 'u':
                return Integer.toString(t.getDayOfWeek().getValue());
            case 'V':
                return number(t.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR), 2, pad);
            case 'G':
                return Integer.toString(t.get(IsoFields.WEEK_BASED_YEAR));
            case 'z':
                return offset(t.getOffset().getTotalSeconds());
            case 'Z':
                return t.getZone().getDisplayName(TextStyle.SHORT, Locale.US);
            case 'c':
                return format("%a %b %e %H:%M:%S %Y", t);
            case 'x':
                return format("%m/%d/%y", t);
            case 'X':
                return format("%H:%M:%S", t);
            case 'D':
                return format("%m/%d/%y", t);
            case 'F':
                return format("%Y-%m-%d", t);
            case 'T':
                return format("%H:%M:%S", t);
            case 's':
                return Long.toString(t.getLong(ChronoField.INSTANT_SECONDS));
            case 'n':
                return "\n";
            case 't':
                return "\t";
            case '%':
                return "%";
            default:
                return null;
        }
    }

    private static String number(int value, int width, boolean pad) {
        return pad ? String.format("%0" + width + "d", value) : Integer.toString(value);
    }

    private static String offset(int seconds) {
        int abs = Math.abs(seconds);
        return String.format("%s%02d%02d", seconds < 0 ? "-" : "+", abs / 3600, abs / 60 % 60);
    }
}
