package org.peft4j.models.tokenizer;

import java.util.Arrays;

/**
 * A tokenizer with other special tokens than its files give (say, a Llama 3 style list of EOS
 * ids over stories260K's tokenizer.bin). Shared with the modules built on peft-models (test jar).
 */
public final class WithSpecialTokens implements LlamaTokenizer {

    private final LlamaTokenizer tokenizer;
    private final SpecialTokens special;

    /**
     * Wraps a tokenizer.
     *
     * @param tokenizer the tokenizer that encodes and decodes (BOS and EOS ids are this one's)
     * @param special the special tokens to report, and to skip when decoding
     */
    public WithSpecialTokens(LlamaTokenizer tokenizer, SpecialTokens special) {
        this.tokenizer = tokenizer;
        this.special = special;
    }

    /** {@inheritDoc} */
    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
        int[] ids = tokenizer.encode(text, false, false);
        int[] out = new int[ids.length + (addBos ? 1 : 0) + (addEos ? 1 : 0)];
        if (addBos) {
            out[0] = getBosTokenId();
        }
        System.arraycopy(ids, 0, out, addBos ? 1 : 0, ids.length);
        if (addEos) {
            out[out.length - 1] = special.getAppendedEosId();
        }
        return out;
    }

    /** {@inheritDoc} */
    @Override
    public String decode(int[] ids) {
        int bos = special.getBosId().orElse(-1);
        return tokenizer.decode(
                Arrays.stream(ids)
                        .filter(id -> id != bos && !special.isEos(id))
                        .toArray());
    }

    /** {@inheritDoc} */
    @Override
    public SpecialTokens getSpecialTokens() {
        return special;
    }

    /** {@inheritDoc} */
    @Override
    public int getVocabSize() {
        return tokenizer.getVocabSize();
    }

    /** Closes the wrapped tokenizer. */
    @Override
    public void close() {
        tokenizer.close();
    }
}
