package org.peft4j.train.data;

import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.models.tokenizer.LlamaTokenizer;

import java.util.Arrays;

/**
 * Tokenises examples as the seed does for causal language models.
 *
 * <p>One round: the source, with BOS, truncated on the left to {@code srcLength} tokens (BOS kept);
 * the target truncated on the right to {@code maxLength - len(source)}, with EOS appended when it
 * was shorter than that; input = source + target, labels = ignore on the source, the target's
 * tokens on the target.
 *
 * <p>Several rounds: {@code source_i + target_i + EOS} one after the other (BOS once, first),
 * labels on targets and their EOS only; when they do not fit in {@code maxLength}, the oldest
 * rounds are dropped, and a last round that alone does not fit is truncated as one round is.
 */
public final class ExampleEncoder {

    private final LlamaTokenizer tokenizer;
    private final int srcLength;
    private final int maxLength;

    /**
     * Creates an encoder.
     *
     * @param tokenizer the model's tokenizer
     * @param srcLength the most source tokens kept, &gt; 0
     * @param maxLength the most tokens of an example, &gt; {@code srcLength}
     * @throws IllegalArgumentException if the lengths are out of range
     */
    public ExampleEncoder(LlamaTokenizer tokenizer, int srcLength, int maxLength) {
        if (srcLength <= 0 || maxLength <= srcLength) {
            throw new IllegalArgumentException(
                    "need 0 < src_length < max_length, got src_length "
                            + srcLength
                            + " and max_length "
                            + maxLength);
        }
        this.tokenizer = tokenizer;
        this.srcLength = srcLength;
        this.maxLength = maxLength;
    }

    /**
     * Tokenises an example.
     *
     * @param example the example
     * @return the ids and aligned labels, at most {@code maxLength} long
     */
    public TokenizedExample encode(Example example) {
        int rounds = example.sources().size();
        if (rounds > 1) {
            for (int first = 0; first < rounds - 1; first++) {
                TokenizedExample joined = joinRounds(example, first);
                if (joined.inputIds().length <= maxLength) {
                    return joined;
                }
            }
        }
        return oneRound(example.sources().get(rounds - 1), example.targets().get(rounds - 1));
    }

    private TokenizedExample oneRound(String sourceText, String targetText) {
        int[] source = tokenizer.encode(sourceText, true, false);
        if (source.length > srcLength) {
            int[] kept = new int[srcLength];
            kept[0] = source[0]; // BOS
            System.arraycopy(source, source.length - (srcLength - 1), kept, 1, srcLength - 1);
            source = kept;
        }
        int targetMax = maxLength - source.length;
        int[] target = tokenizer.encode(targetText, false, false);
        if (target.length > targetMax) {
            target = Arrays.copyOf(target, targetMax);
        }
        if (target.length < targetMax) {
            target = append(target, tokenizer.getEosTokenId());
        }
        return assemble(source, target);
    }

    private TokenizedExample joinRounds(Example example, int first) {
        int[] ids = new int[0];
        int[] labels = new int[0];
        for (int i = first; i < example.sources().size(); i++) {
            int[] source = tokenizer.encode(example.sources().get(i), i == first, false);
            int[] target =
                    append(
                            tokenizer.encode(example.targets().get(i), false, false),
                            tokenizer.getEosTokenId());
            TokenizedExample round = assemble(source, target);
            ids = concat(ids, round.inputIds());
            labels = concat(labels, round.labels());
        }
        return new TokenizedExample(ids, labels);
    }

    private static TokenizedExample assemble(int[] source, int[] target) {
        int[] ids = concat(source, target);
        int[] labels = new int[ids.length];
        Arrays.fill(labels, 0, source.length, TokenCrossEntropy.IGNORE_INDEX);
        System.arraycopy(target, 0, labels, source.length, target.length);
        return new TokenizedExample(ids, labels);
    }

    private static int[] append(int[] values, int value) {
        int[] out = Arrays.copyOf(values, values.length + 1);
        out[values.length] = value;
        return out;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
