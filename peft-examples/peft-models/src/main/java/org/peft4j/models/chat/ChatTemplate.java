package org.peft4j.models.chat;

import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;

import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's chat template: renders a conversation to the exact prompt text that Hugging Face
 * transformers' {@code tokenizer.apply_chat_template(messages, tokenize=False,
 * add_generation_prompt=...)} renders from the same tokenizer files.
 *
 * <p>The template sees what transformers passes it: {@code messages} (each a mapping with {@code
 * role} and {@code content}), {@code add_generation_prompt}, {@code tools} and {@code documents}
 * (none unless given as variables), the special tokens of {@code tokenizer_config.json} ({@code
 * bos_token}, {@code eos_token}, {@code unk_token}, {@code pad_token}), and the caller's extra
 * variables. Instances are immutable and may be shared between threads.
 */
public final class ChatTemplate {

    private static final PyJinjava JINJAVA = new PyJinjava();

    private final TemplateFiles files;

    private ChatTemplate(TemplateFiles files) {
        this.files = files;
        checkSyntax();
    }

    /**
     * Loads the chat template of a model directory: {@code chat_template.jinja} if present (it
     * takes priority, as in transformers), else the {@code chat_template} of {@code
     * tokenizer_config.json}; the special tokens come from {@code tokenizer_config.json}.
     *
     * @param dir the directory holding the tokenizer files
     * @return the template
     * @throws ChatTemplateException if the directory has no template, a file cannot be read or
     *     parsed, or the template has a syntax error
     */
    public static ChatTemplate fromPretrained(Path dir) {
        return new ChatTemplate(TemplateFiles.read(dir));
    }

    /**
     * Creates a template from its source text, with the given special tokens.
     *
     * @param source the file the text came from, named in error messages
     * @param text the Jinja source
     * @param specialTokens token variables such as {@code bos_token}
     * @return the template
     * @throws ChatTemplateException if the template has a syntax error
     */
    public static ChatTemplate of(Path source, String text, Map<String, String> specialTokens) {
        return new ChatTemplate(new TemplateFiles(source, text, specialTokens));
    }

    /**
     * Returns the file the template came from.
     *
     * @return the path of {@code chat_template.jinja} or {@code tokenizer_config.json}
     */
    public Path getSource() {
        return files.getSource();
    }

    /**
     * Returns the template's Jinja source.
     *
     * @return the source
     */
    public String getText() {
        return files.getText();
    }

    /**
     * Returns the special tokens the template sees.
     *
     * @return variable name ({@code bos_token}, ...) to token text
     */
    public Map<String, String> getSpecialTokens() {
        return files.getSpecialTokens();
    }

    /**
     * Renders a conversation with the system clock.
     *
     * @param messages the messages, oldest first
     * @param addGenerationPrompt whether to end with the opening of the assistant's turn
     * @return the prompt text
     * @throws ChatTemplateException if the template refuses the conversation or fails
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(
                ChatInput.builder()
                        .setMessages(messages)
                        .optAddGenerationPrompt(addGenerationPrompt)
                        .build());
    }

    /**
     * Renders a conversation with extra variables and a clock.
     *
     * @param input the conversation, options, variables and clock
     * @return the prompt text
     * @throws ChatTemplateException if the template refuses the conversation or fails
     */
    public String render(ChatInput input) {
        RenderResult result = JINJAVA.renderForResult(source(), bindings(input), config(input));
        failOnErrors(result.getErrors(), "rendering");
        return result.getOutput();
    }

    /**
     * Returns the text jinja2 renders: without one trailing newline, since jinja2 drops it
     * ({@code keep_trailing_newline=False}) and jinjava would print it, and with the string
     * literals' Python escapes decoded as jinja2 decodes them ({@link StringLiterals}).
     */
    private String source() {
        String text = files.getText();
        if (text.endsWith("\r\n")) {
            text = text.substring(0, text.length() - 2);
        } else if (text.endsWith("\n") || text.endsWith("\r")) {
            text = text.substring(0, text.length() - 1);
        }
        return StringLiterals.forJinjava(text);
    }

    private Map<String, Object> bindings(ChatInput input) {
        List<Object> messages = new ArrayList<>();
        for (ChatMessage message : input.getMessages()) {
            messages.add(message.toMap());
        }
        Map<String, Object> bindings = new LinkedHashMap<>(files.getSpecialTokens());
        bindings.put("messages", messages);
        bindings.put("add_generation_prompt", input.isAddGenerationPrompt());
        // jinja2 sees the globals as defined ("strftime_now is defined"); jinjava keeps functions
        // apart from variables, so a stand-in variable makes the test true
        bindings.put("strftime_now", Global.STRFTIME_NOW);
        bindings.put("raise_exception", Global.RAISE_EXCEPTION);
        bindings.putAll(input.getVariables());
        return bindings;
    }

    private static JinjavaConfig config(ChatInput input) {
        Clock clock = input.getClock();
        return PyJinjava.config()
                .withDateTimeProvider(clock::millis)
                .withTimeZone(clock.getZone())
                .build();
    }

    private void checkSyntax() {
        JinjavaConfig config = PyJinjava.config().build();
        JinjavaInterpreter interpreter =
                config.getInterpreterFactory()
                        .newInstance(JINJAVA, JINJAVA.getGlobalContextCopy(), config);
        interpreter.parse(source());
        failOnErrors(interpreter.getErrors(), "parsing");
    }

    private void failOnErrors(List<TemplateError> errors, String stage) {
        for (TemplateError error : errors) {
            if (error.getSeverity() != TemplateError.ErrorType.FATAL) {
                continue;
            }
            String raised = raisedMessage(error.getException());
            if (raised != null) {
                throw new ChatTemplateException(
                        files.getSource() + ": the chat template refused the conversation: " + raised
                                + " (fix the messages to fit the model's chat format)");
            }
            throw new ChatTemplateException(
                    files.getSource() + ": line " + error.getLineno() + " of the chat template: error "
                            + stage + " it: " + error.getMessage()
                            + " (check the template; peft4j supports what docs/chat.md lists)");
        }
    }

    private static String raisedMessage(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof TemplateFunctions.Raised) {
                return t.getMessage();
            }
            if (t.getCause() == t) {
                break;
            }
        }
        return null;
    }

    /** What a template sees when it looks at a global function as a variable. */
    private enum Global {
        STRFTIME_NOW("strftime_now"),
        RAISE_EXCEPTION("raise_exception");

        private final String name;

        Global(String name) {
            this.name = name;
        }

        @Override
        public String toString() {
            return "<function " + name + ">";
        }
    }
}
