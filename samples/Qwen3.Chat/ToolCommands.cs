using Qwen3.Net;
using Qwen3.Net.Hub;
using Qwen3.Net.Server;

namespace Qwen3.Chat;

/// <summary>The <c>qwen3</c> tool's commands besides chat: <c>download</c>, <c>serve</c>, <c>quantize</c> and <c>bench</c>.</summary>
public static class ToolCommands
{
    /// <summary>How to call the tool.</summary>
    public const string Usage =
        "usage: qwen3 chat [model] [--threads N] [--max-tokens N] [--temperature T] [--seed N] [--no-think] [--refresh-page-cache]\n" +
        "       qwen3 bench [model] [--prompt TEXT] [--max-tokens N] [--threads N] [--refresh-page-cache]\n" +
        "       qwen3 download <model>\n" +
        "       qwen3 serve <model> [--port 8000] [--host 127.0.0.1] [--api-key KEY] [--threads N] [--context N] ...\n" +
        "       qwen3 quantize <model> <out.gguf> [--type Q4_K_M|Q4_K_S|Q5_K_M|Q5_K_S|Q6_K|Q5_0|Q3_K_L|Q3_K_M|Q3_K_S|Q2_K|Q8_0]\n" +
        "A model is a local folder, or a Hugging Face id such as Qwen/Qwen3-1.7B (optionally @revision, and :QUANT or\n" +
        "  :file.gguf for a GGUF repository), downloaded once into the Hugging Face cache (HF_HUB_CACHE, HF_HOME).\n" +
        "Without a command, the arguments are chat's (the repository's `dotnet run --project samples/Qwen3.Chat`).";

    /// <summary>The prompt <c>bench</c> completes when none is given.</summary>
    public const string BenchPrompt = "The history of the city of Paris begins";

    /// <summary>Makes a local path of a model: a path that exists as is, else a model id downloaded with a progress bar.</summary>
    /// <param name="model">A local path or a model id.</param>
    /// <param name="progress">Where the progress bar goes.</param>
    /// <param name="interactive">True to redraw the bar in place.</param>
    /// <param name="hub">Hub settings; null for the environment's.</param>
    /// <param name="cancellationToken">Stops the download.</param>
    /// <exception cref="HubException">The model could not be downloaded.</exception>
    public static async Task<string> ResolveModelAsync(string model, TextWriter progress, bool interactive, HubOptions? hub, CancellationToken cancellationToken)
    {
        if (Directory.Exists(model) || File.Exists(model) || !HuggingFaceHub.IsModelId(model))
        {
            return model;
        }

        var bar = new DownloadProgressBar(progress, interactive);
        try
        {
            return await HuggingFaceHub.DownloadAsync(model, hub, bar, cancellationToken);
        }
        finally
        {
            bar.Finish();
        }
    }

    /// <summary><c>qwen3 download &lt;model&gt;</c>: fetches the model into the cache and prints its local path.</summary>
    /// <param name="args">The arguments after <c>download</c>.</param>
    /// <param name="output">Where the path goes.</param>
    /// <param name="error">Where progress and errors go.</param>
    /// <param name="interactive">True to redraw the progress bar in place.</param>
    /// <param name="hub">Hub settings; null for the environment's.</param>
    /// <param name="cancellationToken">Stops the download; the next run resumes it.</param>
    /// <returns>The process exit code: 0, 1 when the download failed, 2 for a bad command line.</returns>
    public static async Task<int> DownloadAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, bool interactive, HubOptions? hub = null, CancellationToken cancellationToken = default)
    {
        if (args.Count != 1 || args[0].StartsWith("--", StringComparison.Ordinal) || !HuggingFaceHub.IsModelId(args[0]))
        {
            await error.WriteLineAsync("qwen3 download takes one model id, such as Qwen/Qwen3-1.7B or Qwen/Qwen3-1.7B-GGUF:Q8_0.");
            return 2;
        }

        try
        {
            string path = await ResolveModelAsync(args[0], error, interactive, hub, cancellationToken);
            await output.WriteLineAsync(path);
            return 0;
        }
        catch (HubException e)
        {
            await error.WriteLineAsync(e.Message);
            return 1;
        }
    }

    /// <summary>
    /// <c>qwen3 quantize &lt;model&gt; &lt;out.gguf&gt; [--type T]</c>: writes a quantized GGUF of a Hugging Face model
    /// folder (downloaded first when given as an id), Q4_K_M unless <c>--type</c> says otherwise (docs/quantization.md).
    /// </summary>
    /// <param name="args">The arguments after <c>quantize</c>.</param>
    /// <param name="output">Where the written file's path goes.</param>
    /// <param name="error">Where progress and errors go.</param>
    /// <param name="interactive">True to redraw the download progress bar in place.</param>
    /// <param name="cancellationToken">Stops the download or the quantization; no partial file is left.</param>
    /// <returns>The process exit code: 0, 1 when the model could not be read or the file written, 2 for a bad command line.</returns>
    public static async Task<int> QuantizeAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, bool interactive, CancellationToken cancellationToken = default)
    {
        var positional = new List<string>();
        QuantizationType type = QuantizationType.Q4_K_M;
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--type" && i + 1 < args.Count && Enum.TryParse(args[i + 1], ignoreCase: true, out type) && Enum.IsDefined(type) && !char.IsDigit(args[i + 1][0]))
            {
                i++;
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                await error.WriteLineAsync($"qwen3 quantize: '{args[i]}{(i + 1 < args.Count ? " " + args[i + 1] : "")}' is not an option it takes; --type is one of {string.Join(", ", Enum.GetNames<QuantizationType>())}.");
                return 2;
            }
            else
            {
                positional.Add(args[i]);
            }
        }

        if (positional.Count != 2)
        {
            await error.WriteLineAsync("qwen3 quantize takes a model (a folder or an id such as Qwen/Qwen3-1.7B) and the GGUF file to write.");
            return 2;
        }

        try
        {
            string folder = await ResolveModelAsync(positional[0], error, interactive, null, cancellationToken);
            await Qwen3Quantizer.QuantizeAsync(folder, positional[1], type, new TensorLines(error), cancellationToken);
            await output.WriteLineAsync(Path.GetFullPath(positional[1]));
            return 0;
        }
        catch (Exception e) when (e is HubException or ModelLoadException or NotSupportedException or IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            await error.WriteLineAsync(e.Message);
            return 1;
        }
    }

    /// <summary><c>qwen3 serve &lt;model&gt; [server options]</c>: downloads the model if needed, then runs the OpenAI-compatible server.</summary>
    /// <param name="args">The arguments after <c>serve</c>: the model, then the server's options (docs/server.md).</param>
    /// <param name="error">Where progress and errors go.</param>
    /// <param name="interactive">True to redraw the progress bar in place.</param>
    /// <param name="cancellationToken">Stops the download.</param>
    /// <returns>The process exit code.</returns>
    public static async Task<int> ServeAsync(IReadOnlyList<string> args, TextWriter error, bool interactive, CancellationToken cancellationToken = default)
    {
        if (args.Count == 0 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            await error.WriteLineAsync("qwen3 serve takes a model (a folder or an id such as Qwen/Qwen3-1.7B) first, then the server's options.");
            await error.WriteLineAsync(ServerCommandLine.Usage);
            return 2;
        }

        ServerHost host;
        try
        {
            string folder = await ResolveModelAsync(args[0], error, interactive, null, cancellationToken);
            // A downloaded model's folder is named by its commit: clients name it by the id instead.
            string[] name = folder != args[0] && !args.Contains("--served-model-name") ? ["--served-model-name", args[0]] : [];
            host = ServerHost.Build(ServerCommandLine.Parse(["--model", folder, .. name, .. args.Skip(1)]));
        }
        catch (ArgumentException e)
        {
            await error.WriteLineAsync(e.Message);
            await error.WriteLineAsync(ServerCommandLine.Usage);
            return 2;
        }
        catch (Exception e) when (e is HubException or ModelLoadException or NotSupportedException or DirectoryNotFoundException)
        {
            await error.WriteLineAsync(e.Message);
            return 1;
        }

        using (host.Model)
        {
            await host.App.RunAsync();
        }

        return 0;
    }

    // Progress<T> would post the lines to the thread pool, out of order and possibly after the command returned.
    private sealed class TensorLines(TextWriter error) : IProgress<QuantizationProgress>
    {
        public void Report(QuantizationProgress value) =>
            error.WriteLine($"[{value.TensorsDone}/{value.TensorCount}] {value.TensorName} {value.TensorType}");
    }
}
