using Qwen3.Net.ScriptedModel;

// dotnet run --project tests/Qwen3.Net.ScriptedModel -- <output-folder> [--tokenizer <folder>]
if (args.Length is not (1 or 3) || (args.Length == 3 && args[1] != "--tokenizer"))
{
    Console.Error.WriteLine("usage: Qwen3.Net.ScriptedModel <output-folder> [--tokenizer <folder with the Qwen3 tokenizer files>]");
    return 2;
}

string tokenizerFolder = args.Length == 3 ? args[2] : ScriptedModelGenerator.FindTokenizerFolder(Directory.GetCurrentDirectory());
var plan = ScriptedModelGenerator.Write(args[0], tokenizerFolder);
Console.WriteLine($"Wrote {Path.GetFullPath(args[0])}: chat {plan.ChatThinking.Count} tokens, tool call {plan.ToolCallThinking.Count}, after the tool result {plan.FinalThinking.Count} (thinking on).");
return 0;
