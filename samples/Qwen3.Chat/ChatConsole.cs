using System.Diagnostics;
using System.Globalization;
using Qwen3.Net;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;
using Qwen3.Net.Hub;

namespace Qwen3.Chat;

/// <summary>
/// The interactive chat loop, reading lines from one text stream and writing the streamed answers to another, so it
/// runs the same on a terminal and under test.
/// </summary>
/// <param name="input">Where the user's lines come from.</param>
/// <param name="output">Where prompts, reasoning and answers go.</param>
/// <param name="options">Model folder, sampling and display settings.</param>
public sealed class ChatConsole(TextReader input, TextWriter output, ChatConsoleOptions options)
{
    private const string Dim = "\u001b[2m";
    private const string Plain = "\u001b[0m";

    /// <summary>
    /// Tokens per reply of the bundled random-weight model unless --max-tokens is given: it never chooses to end its turn,
    /// and the chat defaults (up to 32,768 tokens while thinking) would print random text for minutes.
    /// </summary>
    public const int BundledModelMaxTokens = 200;

    private readonly Lock _gate = new();
    private CancellationTokenSource? _answer;

    /// <summary>Tokens per chat reply: --max-tokens, else the bundled model's bound, else the sampling defaults' (null).</summary>
    private int? ReplyMaxTokens => options.MaxTokens ?? (options.ModelFolder is null ? BundledModelMaxTokens : null);

    /// <summary>
    /// Cancels the answer being generated, if any (what Ctrl+C does). Returns false when no answer is running, so the
    /// caller can let Ctrl+C end the program instead.
    /// </summary>
    public bool CancelCurrentAnswer()
    {
        lock (_gate)
        {
            if (_answer is null)
            {
                return false;
            }

            _answer.Cancel();
            return true;
        }
    }

    /// <summary>Loads the model and chats until <c>/exit</c> or the end of the input.</summary>
    /// <param name="cancellationToken">Ends the program.</param>
    /// <returns>The process exit code.</returns>
    public async Task<int> RunAsync(CancellationToken cancellationToken = default)
    {
        string? folder = options.ModelFolder ?? FindBundledModel();
        if (folder is null)
        {
            await output.WriteLineAsync("No model folder given and the bundled tiny model (tests/fixtures/tiny-qwen3) was not found.");
            await output.WriteLineAsync(ChatConsoleOptions.Usage);
            return 2;
        }

        if (options.ModelFolder is null)
        {
            // --prompt completes its own token count (CompleteGreedilyAsync), so only the chat's replies are announced.
            string length = options.Prompt is null ? $", {ReplyMaxTokens} tokens each (--max-tokens N to change)" : "";
            await output.WriteLineAsync($"No model folder given: using the bundled tiny test model. Its weights are random, so its replies are random text{length}.");
        }

        using var model = await LoadAsync(folder, cancellationToken);
        if (model is null)
        {
            return 1;
        }

        if (options.Prompt is not null)
        {
            await CompleteGreedilyAsync(model, options.Prompt, cancellationToken);
            return 0;
        }

        var mode = options.NoThink ? ThinkingMode.Disabled : ThinkingMode.Enabled;
        using var session = new ChatSession(model, new ChatSessionOptions { ThinkingMode = mode });
        await output.WriteLineAsync("Commands: /think, /no_think, /reset, /exit. Ctrl+C stops the current answer.");
        while (!cancellationToken.IsCancellationRequested)
        {
            await output.WriteAsync($"{(mode == ThinkingMode.Enabled ? "think" : "no_think")}> ");
            string? line = await input.ReadLineAsync(cancellationToken);
            if (line is null || line.Trim() == "/exit")
            {
                break;
            }

            switch (line.Trim())
            {
                case "":
                    continue;
                case "/reset":
                    session.Reset();
                    await output.WriteLineAsync("(conversation cleared)");
                    continue;
                case "/think":
                    mode = ThinkingMode.Enabled;
                    await output.WriteLineAsync("(thinking enabled)");
                    continue;
                case "/no_think":
                    mode = ThinkingMode.Disabled;
                    await output.WriteLineAsync("(thinking disabled)");
                    continue;
            }

            await AnswerAsync(session, line, mode, cancellationToken);
        }

        return 0;
    }

    /// <summary>Plain text completion: the prompt as is, then the most likely token at every step.</summary>
    private async Task CompleteGreedilyAsync(Qwen3Model model, string prompt, CancellationToken cancellationToken)
    {
        int maxTokens = options.MaxTokens ?? 32;
        int[] ids = [.. model.Tokenizer.Encode(prompt)];
        if (ids.Length == 0)
        {
            await output.WriteLineAsync("The prompt is empty.");
            return;
        }

        using var context = model.CreateContext(Math.Min(model.Config.MaxPositionEmbeddings, ids.Length + maxTokens));
        var generation = new GenerationOptions
        {
            Sampling = SamplingOptions.Greedy with { MaxNewTokens = maxTokens },
            StopTokenIds = model.Config.EosTokenIds,
            SkipSpecialTokens = false,
        };

        await output.WriteAsync(prompt);
        GenerationUsage? usage = null;
        await foreach (var update in new Generator(context).GenerateAsync(ids, generation, cancellationToken))
        {
            // The end-of-text token itself has no text here: the generator leaves stop tokens out.
            await output.WriteAsync(update.Text);
            await output.FlushAsync(cancellationToken);
            usage = update.Usage ?? usage;
        }

        await output.WriteLineAsync();
        if (usage is not null)
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"[{usage.PromptTokens} prompt tokens at {usage.PrefillTokensPerSecond:F1} tok/s, {usage.GeneratedTokens} generated at {usage.DecodeTokensPerSecond:F1} tok/s, greedy]"));
        }
    }

    private async Task<Qwen3Model?> LoadAsync(string folder, CancellationToken cancellationToken)
    {
        try
        {
            // A model id is downloaded first (once), with a progress bar on the same output.
            folder = await ToolCommands.ResolveModelAsync(folder, output, options.UseColor, null, cancellationToken);
        }
        catch (HubException e)
        {
            await output.WriteLineAsync($"Download failed: {e.Message}");
            return null;
        }

        await output.WriteAsync($"Loading {folder} ");
        var clock = Stopwatch.StartNew();
        var loading = Task.Run(() => Qwen3Model.Load(folder, new Qwen3ModelOptions { ThreadCount = options.Threads, RefreshPageCache = options.RefreshPageCache }), cancellationToken);

        // A dot every half second shows a big model is still loading; the loader has no finer progress to report.
        while (await Task.WhenAny(loading, Task.Delay(500, cancellationToken)) != loading)
        {
            await output.WriteAsync(".");
        }

        try
        {
            var model = await loading;
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"done in {clock.Elapsed.TotalSeconds:F1} s ({model.Config.NumHiddenLayers} layers, hidden {model.Config.HiddenSize})."));
            return model;
        }
        catch (Exception e) when (e is ModelLoadException or NotSupportedException)
        {
            await output.WriteLineAsync($"failed: {e.Message}");
            return null;
        }
    }

    private async Task AnswerAsync(ChatSession session, string line, ThinkingMode mode, CancellationToken cancellationToken)
    {
        var defaults = SamplingOptions.For(mode == ThinkingMode.Enabled);
        var sampling = defaults with
        {
            Temperature = options.Temperature ?? defaults.Temperature,
            MaxNewTokens = ReplyMaxTokens ?? defaults.MaxNewTokens,
            Seed = options.Seed ?? defaults.Seed,
        };

        using var answer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        lock (_gate)
        {
            _answer = answer;
        }

        try
        {
            bool inReasoning = false;
            await foreach (var update in session.SendAsync(line, new ChatTurnOptions { ThinkingMode = mode, Sampling = sampling }, answer.Token))
            {
                if (update.Kind == ChatUpdateKind.Reasoning && !inReasoning)
                {
                    await output.WriteAsync(options.UseColor ? Dim : "[thinking] ");
                    inReasoning = true;
                }
                else if (update.Kind != ChatUpdateKind.Reasoning && inReasoning)
                {
                    await output.WriteAsync(options.UseColor ? Plain + "\n" : "\n[answer] ");
                    inReasoning = false;
                }

                switch (update.Kind)
                {
                    case ChatUpdateKind.Reasoning or ChatUpdateKind.Answer:
                        await output.WriteAsync(update.Text);
                        break;
                    case ChatUpdateKind.ToolCall:
                        await output.WriteAsync($"\n[tool call] {update.ToolCall!.Name} {update.ToolCall.Arguments.GetRawText()}\n");
                        break;
                    case ChatUpdateKind.MalformedToolCall:
                        await output.WriteAsync($"\n[malformed tool call] {update.MalformedToolCall!.Error}\n");
                        break;
                    case ChatUpdateKind.Finished:
                        var u = update.Usage!;
                        string note = update.FinishReason == FinishReason.Cancelled ? " · cancelled" : string.Empty;
                        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                            $"\n[{u.GeneratedTokens} tokens · {u.DecodeTokensPerSecond:F1} tok/s · prompt {u.PromptTokens} ({u.ReusedPromptTokens} reused, {u.PrefillTokensPerSecond:F1} tok/s) · {update.FinishReason}{note}]"));
                        break;
                }
            }
        }
        catch (ContextOverflowException e)
        {
            await output.WriteLineAsync($"[the conversation no longer fits: {e.Message} Type /reset to start over.]");
        }
        finally
        {
            lock (_gate)
            {
                _answer = null;
            }
        }
    }

    /// <summary>Looks for tests/fixtures/tiny-qwen3 above the executable and the working directory.</summary>
    private static string? FindBundledModel()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "tiny-qwen3");
                if (File.Exists(Path.Combine(candidate, "config.json")))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
