package org.peft4j.models.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes a {@code tokenizer.json} over a llama2.c {@code tokenizer.bin}'s vocabulary (the same ids,
 * so it fits the stories260K model): a WordLevel model whose token {@code i} is piece {@code i},
 * {@code <unk>}, {@code <s>}, {@code </s>} at 0, 1, 2 as llama2.c has them, and a decoder that
 * joins the pieces. It does not encode as llama2.c does; it is for tests that generate from BOS
 * and need Hugging Face special-token files beside a tokenizer that decodes the model's output.
 * Shared with the modules built on peft-models (test jar).
 */
public final class StoriesTokenizerJson {

    /** The names of ids 0, 1, 2, as Llama 2's tokenizer.json has them. */
    private static final String[] SPECIAL = {"<unk>", "<s>", "</s>"};

    private StoriesTokenizerJson() {}

    /**
     * Writes {@code dir/tokenizer.json}.
     *
     * @param dir the directory, which must exist
     * @param tokenizerBin the llama2.c tokenizer whose vocabulary to take
     * @return the file written
     * @throws IOException if reading or writing fails
     */
    public static Path write(Path dir, Path tokenizerBin) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode vocab = json.createObjectNode();
        ArrayNode added = json.createArrayNode();
        try (Llama2cTokenizer bin = Llama2cTokenizer.load(tokenizerBin)) {
            for (int id = 0; id < bin.getVocabSize(); id++) {
                String piece = id < 3 ? SPECIAL[id] : bin.getPiece(id);
                while (vocab.has(piece)) { // a JSON object needs unique keys
                    piece = piece + "\u0000";
                }
                vocab.put(piece, id);
                if (id < 3) {
                    added.addObject()
                            .put("id", id)
                            .put("content", piece)
                            .put("single_word", false)
                            .put("lstrip", false)
                            .put("rstrip", false)
                            .put("normalized", false)
                            .put("special", true);
                }
            }
        }
        ObjectNode root = json.createObjectNode().put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        root.set("added_tokens", added);
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "Whitespace");
        root.putNull("post_processor");
        root.putObject("decoder").put("type", "Fuse");
        ObjectNode model = root.putObject("model").put("type", "WordLevel");
        model.set("vocab", vocab);
        model.put("unk_token", "<unk>");
        return Files.writeString(dir.resolve("tokenizer.json"), root.toString());
    }
}
