package org.peft4j.cli;

import org.peft4j.core.lm.PromptTruncation;
import org.peft4j.train.Schedule;
import org.peft4j.train.data.Overlong;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

import java.util.Locale;

/**
 * The ranges and choices of the commands' options, checked while the command line is parsed: a
 * value out of range is a usage error (exit status 2) that names the option as typed, before
 * anything loads, e.g. {@code Invalid value for option '--max-new-tokens': must be an integer >=
 * 0, got "-1"}. The configs behind the options check the same ranges for the Java API, in its own
 * names; the command line never lets a value reach them that they would refuse.
 */
final class Ranges {

    private Ranges() {}

    /** An integer of at least a minimum. */
    abstract static class IntAtLeast implements ITypeConverter<Integer> {
        private final int min;

        IntAtLeast(int min) {
            this.min = min;
        }

        /** {@inheritDoc} */
        @Override
        public Integer convert(String value) {
            try {
                int parsed = Integer.parseInt(value.strip());
                if (parsed >= min) {
                    return parsed;
                }
            } catch (NumberFormatException e) {
                // not an integer: refused below as one out of range is
            }
            throw new TypeConversionException(
                    "must be an integer >= " + min + ", got \"" + value + '"');
        }
    }

    /** Counts where 0 means none or off: steps, tokens, {@code --top-k}. */
    static final class AtLeast0 extends IntAtLeast {
        AtLeast0() {
            super(0);
        }
    }

    /** Sizes and degrees: batch sizes, ranks, prefix tokens, {@code --tensor-parallel-degree}. */
    static final class AtLeast1 extends IntAtLeast {
        AtLeast1() {
            super(1);
        }
    }

    /** {@code --max-length}: a source token and a target token at least. */
    static final class AtLeast2 extends IntAtLeast {
        AtLeast2() {
            super(2);
        }
    }

    /** {@code bench --timed-steps}: a median of at least five. */
    static final class AtLeast5 extends IntAtLeast {
        AtLeast5() {
            super(5);
        }
    }

    /**
     * A finite number in a range, checked in the type of the option's field, so that a value that
     * rounds to 0 in a {@code float} is refused as 0 is.
     *
     * @param <T> the field's type
     */
    abstract static class Real<T extends Number> implements ITypeConverter<T> {
        private final double min;
        private final boolean minIncluded;
        private final double max;
        private final boolean maxIncluded;

        Real(double min, boolean minIncluded, double max, boolean maxIncluded) {
            this.min = min;
            this.minIncluded = minIncluded;
            this.max = max;
            this.maxIncluded = maxIncluded;
        }

        /** Rounds the parsed value to the field's type. */
        abstract T narrow(double value);

        /** {@inheritDoc} */
        @Override
        public T convert(String value) {
            double parsed;
            try {
                parsed = Double.parseDouble(value.strip());
            } catch (NumberFormatException e) {
                parsed = Double.NaN; // refused below: NaN is in no range
            }
            T narrowed = narrow(parsed);
            double v = narrowed.doubleValue();
            boolean above = minIncluded ? v >= min : v > min;
            boolean below = maxIncluded ? v <= max : v < max;
            if (!(above && below) || Double.isInfinite(v)) {
                throw new TypeConversionException(
                        "must be a number " + range() + ", got \"" + value + '"');
            }
            return narrowed;
        }

        private String range() {
            if (Double.isInfinite(max)) {
                return (minIncluded ? ">= " : "> ") + number(min);
            }
            return "in "
                    + (minIncluded ? "[" : "(")
                    + number(min)
                    + ", "
                    + number(max)
                    + (maxIncluded ? "]" : ")");
        }

        private static String number(double value) {
            return value == Math.rint(value) ? Long.toString((long) value) : Double.toString(value);
        }
    }

    /** A {@code double} option in a range. */
    abstract static class RealDouble extends Real<Double> {
        RealDouble(double min, boolean minIncluded, double max, boolean maxIncluded) {
            super(min, minIncluded, max, maxIncluded);
        }

        @Override
        Double narrow(double value) {
            return value;
        }
    }

    /** A {@code float} option in a range. */
    abstract static class RealFloat extends Real<Float> {
        RealFloat(double min, boolean minIncluded, double max, boolean maxIncluded) {
            super(min, minIncluded, max, maxIncluded);
        }

        @Override
        Float narrow(double value) {
            return (float) value;
        }
    }

    /** Rates and scales: {@code --learning-rate}, {@code --lora-alpha}. */
    static final class Positive extends RealDouble {
        Positive() {
            super(0, false, Double.POSITIVE_INFINITY, false);
        }
    }

    /** Where 0 is off: {@code --max-grad-norm}, {@code --weight-decay}. */
    static final class NonNegative extends RealDouble {
        NonNegative() {
            super(0, true, Double.POSITIVE_INFINITY, false);
        }
    }

    /** A dropout probability, in [0, 1). */
    static final class Dropout extends RealDouble {
        Dropout() {
            super(0, true, 1, false);
        }
    }

    /** {@code --temperature}: 0 is greedy. */
    static final class Temperature extends RealFloat {
        Temperature() {
            super(0, true, Double.POSITIVE_INFINITY, false);
        }
    }

    /** {@code --top-p}: the nucleus mass, in (0, 1]. */
    static final class TopP extends RealFloat {
        TopP() {
            super(0, false, 1, true);
        }
    }

    /**
     * A choice among an enum's constants, typed in lower case.
     *
     * @param <E> the enum
     */
    abstract static class Choice<E extends Enum<E>> implements ITypeConverter<E> {
        private final Class<E> type;

        Choice(Class<E> type) {
            this.type = type;
        }

        /** {@inheritDoc} */
        @Override
        public E convert(String value) {
            E[] constants = type.getEnumConstants();
            StringBuilder names = new StringBuilder();
            for (int i = 0; i < constants.length; i++) {
                if (name(constants[i]).equals(value.strip())) {
                    return constants[i];
                }
                if (i > 0) {
                    names.append(i == constants.length - 1 ? " or " : ", ");
                }
                names.append(name(constants[i]));
            }
            throw new TypeConversionException("must be " + names + ", got \"" + value + '"');
        }
    }

    /** {@code --overlong}: truncate or drop. */
    static final class OverlongChoice extends Choice<Overlong> {
        OverlongChoice() {
            super(Overlong.class);
        }
    }

    /** {@code --truncate-prompt}: none or left. */
    static final class TruncationChoice extends Choice<PromptTruncation> {
        TruncationChoice() {
            super(PromptTruncation.class);
        }
    }

    /** {@code --lr-scheduler}: linear, cosine or constant. */
    static final class ScheduleChoice extends Choice<Schedule.Kind> {
        ScheduleChoice() {
            super(Schedule.Kind.class);
        }
    }

    /** Prints a choice as the command line reads it. */
    private static String name(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT);
    }
}
