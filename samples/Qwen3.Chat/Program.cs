using System.Text;
using Qwen3.Chat;

ChatConsoleOptions options;
try
{
    options = ChatConsoleOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(ChatConsoleOptions.Usage);
    return 2;
}

Console.OutputEncoding = Encoding.UTF8;
Console.InputEncoding = Encoding.UTF8;
var chat = new ChatConsole(Console.In, Console.Out, options with { UseColor = !Console.IsOutputRedirected });

// Ctrl+C stops the answer being generated; at the prompt it ends the program as usual.
Console.CancelKeyPress += (_, e) => e.Cancel = chat.CancelCurrentAnswer();
return await chat.RunAsync();
