package org.peft4j.cli;

import ai.djl.nn.Block;

import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.lm.ContextOverflowException;
import org.peft4j.core.lm.PromptTruncation;
import org.peft4j.models.llama.LlamaForCausalLM;

import java.nio.file.Path;

/**
 * The context of the model a command runs (its positions, less those a prefix adapter takes), and
 * the checks of lengths against it in the options' names, so that a command refuses what the
 * model cannot run before it runs anything.
 */
final class ModelContext {

    private final int context;
    private final String description;

    private ModelContext(int context, String description) {
        this.context = context;
        this.description = description;
    }

    /**
     * Reads the context of a block.
     *
     * @param block the model, or the model with its adapter
     * @param llama the base model
     * @param path the base model's path as given, for messages
     * @return the context
     */
    static ModelContext of(Block block, LlamaForCausalLM llama, Path path) {
        int context = CausalLanguageModel.maxPositionsOf(block);
        int positions = llama.getMaxPositions();
        String description =
                path
                        + " has "
                        + positions
                        + " positions (max_position_embeddings)"
                        + (context < positions
                                ? ", and the prefix's "
                                        + (positions - context)
                                        + " virtual tokens take the first of them, leaving "
                                        + context
                                : "");
        return new ModelContext(context, description);
    }

    /** Returns the most tokens a row may hold. */
    int tokens() {
        return context;
    }

    /** Says where the context comes from: the model's positions, and a prefix's share of them. */
    @Override
    public String toString() {
        return description;
    }

    /**
     * Words the generator's refusal of a prompt in the command's options: the same lengths and
     * context, and what to pass instead.
     *
     * @param e what the generator refused
     * @return the message, naming {@code --max-new-tokens} and {@code --truncate-prompt}
     */
    String describe(ContextOverflowException e) {
        int maxNewTokens = e.getMaxNewTokens();
        if (e.getTruncation() == PromptTruncation.LEFT) {
            return "--max-new-tokens "
                    + maxNewTokens
                    + " leaves no room for the prompt in the model's context: "
                    + description
                    + "; use --max-new-tokens "
                    + (context - 1)
                    + " or less";
        }
        int promptTokens = e.getPromptTokens();
        int room = context - promptTokens;
        return "the prompt ("
                + promptTokens
                + " tokens) and --max-new-tokens "
                + maxNewTokens
                + " need "
                + ((long) promptTokens + maxNewTokens)
                + " positions, more than the model's context: "
                + description
                + "; shorten the prompt, lower --max-new-tokens"
                + (room > 0 ? " to " + room : "")
                + (maxNewTokens < context
                        ? ", or pass --truncate-prompt left to keep the prompt's first token and"
                                + " its last "
                                + (context - maxNewTokens - 1)
                        : "");
    }
}
