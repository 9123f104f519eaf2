package org.peft4j.models.llama.weights;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.peft4j.core.io.NativeArrays;
import org.peft4j.models.llama.LlamaConfig;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A llama2.c checkpoint ({@code run.c}'s format, version 0): seven int32 ({@code dim, hidden_dim,
 * n_layers, n_heads, n_kv_heads, vocab_size, seq_len}; a negative vocabulary size means an untied
 * classifier), then float32 tensors, each stacked over layers: token embedding, attention norms,
 * {@code wq, wk, wv, wo}, MLP norms, {@code w1} (gate), {@code w2} (down), {@code w3} (up), the
 * final norm, two rotary tables (skipped), and the classifier when untied.
 *
 * <p>llama2.c rotates adjacent pairs {@code (x[2i], x[2i+1])}; Hugging Face rotates {@code (x[i],
 * x[i + d/2])}. The rows of {@code wq} and {@code wk} are permuted on load so that the model
 * computes the same function in Hugging Face's layout.
 */
final class Llama2cWeights implements WeightSource {

    private static final int HEADER_BYTES = 7 * 4;

    private final Path file;
    private final FileChannel channel;
    private final LlamaConfig config;
    private final Map<String, Tensor> tensors;

    private record Tensor(long offset, Shape shape, int permuteHeads) {}

    private Llama2cWeights(
            Path file, FileChannel channel, LlamaConfig config, Map<String, Tensor> tensors) {
        this.file = file;
        this.channel = channel;
        this.config = config;
        this.tensors = tensors;
    }

    static Llama2cWeights open(Path file) throws IOException {
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            return parse(file, channel);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static Llama2cWeights parse(Path file, FileChannel channel) throws IOException {
        if (channel.size() < HEADER_BYTES) {
            throw new IOException(file + ": " + channel.size() + " bytes, shorter than the header");
        }
        ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        channel.read(header, 0);
        int dim = header.getInt(0);
        int hidden = header.getInt(4);
        int layers = header.getInt(8);
        int heads = header.getInt(12);
        int kvHeads = header.getInt(16);
        int vocab = header.getInt(20);
        int seqLen = header.getInt(24);
        boolean shared = vocab > 0;
        vocab = Math.abs(vocab);
        if (dim <= 0
                || hidden <= 0
                || layers <= 0
                || heads <= 0
                || kvHeads <= 0
                || seqLen <= 0
                || dim % heads != 0
                || heads % kvHeads != 0) {
            throw new IOException(
                    file
                            + ": not a llama2.c checkpoint (header dim="
                            + dim
                            + " hidden_dim="
                            + hidden
                            + " n_layers="
                            + layers
                            + " n_heads="
                            + heads
                            + " n_kv_heads="
                            + kvHeads
                            + " vocab_size="
                            + vocab
                            + " seq_len="
                            + seqLen
                            + ")");
        }
        LlamaConfig config;
        try {
            config =
                    LlamaConfig.builder()
                            .setSizes(dim, hidden, layers, heads, kvHeads, vocab)
                            .optRmsNormEps(1e-5)
                            .optRopeTheta(10000)
                            .optMaxPositionEmbeddings(seqLen)
                            .optTieWordEmbeddings(shared)
                            .optSpecialTokens(1, 2)
                            .build();
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
        int headDim = dim / heads;
        long kvDim = (long) kvHeads * headDim;
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        long at = HEADER_BYTES;
        at = add(tensors, "model.embed_tokens.weight", at, new Shape(vocab, dim), 0);
        at = stack(tensors, layers, "input_layernorm.weight", at, new Shape(dim), 0);
        at = stack(tensors, layers, "self_attn.q_proj.weight", at, new Shape(dim, dim), heads);
        at = stack(tensors, layers, "self_attn.k_proj.weight", at, new Shape(kvDim, dim), kvHeads);
        at = stack(tensors, layers, "self_attn.v_proj.weight", at, new Shape(kvDim, dim), 0);
        at = stack(tensors, layers, "self_attn.o_proj.weight", at, new Shape(dim, dim), 0);
        at = stack(tensors, layers, "post_attention_layernorm.weight", at, new Shape(dim), 0);
        at = stack(tensors, layers, "mlp.gate_proj.weight", at, new Shape(hidden, dim), 0);
        at = stack(tensors, layers, "mlp.down_proj.weight", at, new Shape(dim, hidden), 0);
        at = stack(tensors, layers, "mlp.up_proj.weight", at, new Shape(hidden, dim), 0);
        at = add(tensors, "model.norm.weight", at, new Shape(dim), 0);
        at += 2L * seqLen * (headDim / 2) * 4; // rotary tables, recomputed by the model
        if (!shared) {
            at = add(tensors, "lm_head.weight", at, new Shape(vocab, dim), 0);
        }
        if (channel.size() < at) {
            throw new IOException(
                    file
                            + ": truncated: the header describes "
                            + at
                            + " bytes ("
                            + config
                            + "), the file has "
                            + channel.size());
        }
        return new Llama2cWeights(file, channel, config, Collections.unmodifiableMap(tensors));
    }

    private static long add(
            Map<String, Tensor> tensors, String name, long at, Shape shape, int permuteHeads) {
        tensors.put(name, new Tensor(at, shape, permuteHeads));
        return at + shape.size() * 4;
    }

    private static long stack(
            Map<String, Tensor> tensors,
            int layers,
            String suffix,
            long at,
            Shape shape,
            int permuteHeads) {
        for (int i = 0; i < layers; i++) {
            at = add(tensors, "model.layers." + i + '.' + suffix, at, shape, permuteHeads);
        }
        return at;
    }

    LlamaConfig config() {
        return config;
    }

    @Override
    public String describe() {
        return file.toString();
    }

    @Override
    public Set<String> names() {
        return tensors.keySet();
    }

    @Override
    public Shape shape(String name) {
        return tensors.get(name).shape();
    }

    @Override
    public NDArray load(String name, NDManager manager) throws IOException {
        Tensor tensor = tensors.get(name);
        NDArray raw =
                NativeArrays.create(
                        manager,
                        tensor.shape(),
                        DataType.FLOAT32,
                        target -> {
                            long at = tensor.offset();
                            while (target.hasRemaining()) {
                                int n = channel.read(target, at);
                                if (n < 0) {
                                    throw new IOException(file + ": unexpected end of file");
                                }
                                at += n;
                            }
                        });
        if (tensor.permuteHeads() == 0) {
            return raw;
        }
        // rows h*d + 2i + j (adjacent pairs) become h*d + j*d/2 + i (rotate-half halves)
        Shape shape = tensor.shape();
        long heads = tensor.permuteHeads();
        long headDim = shape.get(0) / heads;
        NDArray permuted =
                NativeArrays.copyOf(
                        raw.reshape(heads, headDim / 2, 2, shape.get(1))
                                .transpose(0, 2, 1, 3)
                                .reshape(shape));
        raw.close();
        return permuted;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
