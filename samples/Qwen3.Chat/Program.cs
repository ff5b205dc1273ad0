using System.Text;
using Qwen3.Chat;

// The qwen3 tool: chat (also what runs without a command, as `dotnet run --project samples/Qwen3.Chat` always did),
// bench, download, serve and quantize.
Console.OutputEncoding = Encoding.UTF8;
Console.InputEncoding = Encoding.UTF8;
string command = args.Length > 0 && args[0] is "chat" or "bench" or "download" or "serve" or "quantize" or "help" or "--help" or "-h" ? args[0] : "chat";
string[] rest = args.Length > 0 && args[0] == command ? args[1..] : args;
using var stop = new CancellationTokenSource();
bool interactive = !Console.IsErrorRedirected;
switch (command)
{
    case "download":
        Console.CancelKeyPress += (_, e) => e.Cancel = !stop.IsCancellationRequested && Cancel(stop);
        return await ToolCommands.DownloadAsync(rest, Console.Out, Console.Error, interactive, cancellationToken: stop.Token);
    case "quantize":
        Console.CancelKeyPress += (_, e) => e.Cancel = !stop.IsCancellationRequested && Cancel(stop);
        return await ToolCommands.QuantizeAsync(rest, Console.Out, Console.Error, interactive, stop.Token);
    case "serve":
        return await ToolCommands.ServeAsync(rest, Console.Error, interactive, stop.Token);
    case "help" or "--help" or "-h":
        Console.WriteLine(ToolCommands.Usage);
        return 0;
}

ChatConsoleOptions options;
try
{
    options = ChatConsoleOptions.Parse(rest);
    if (command == "bench")
    {
        options = options with { Prompt = options.Prompt ?? ToolCommands.BenchPrompt, MaxTokens = options.MaxTokens ?? 64 };
    }
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(ToolCommands.Usage);
    return 2;
}

var chat = new ChatConsole(Console.In, Console.Out, options with { UseColor = !Console.IsOutputRedirected });

// Ctrl+C stops the answer being generated; at the prompt it ends the program as usual.
Console.CancelKeyPress += (_, e) => e.Cancel = chat.CancelCurrentAnswer();
return await chat.RunAsync();

static bool Cancel(CancellationTokenSource source)
{
    source.Cancel();
    return true;
}
