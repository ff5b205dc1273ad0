using Qwen3.Net;
using Qwen3.Net.Server;

ServerCommandLine commandLine;
try
{
    commandLine = ServerCommandLine.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(ServerCommandLine.Usage);
    return 2;
}

var app = ServerHost.Build(commandLine, out var model);
using (model)
{
    await app.RunAsync();
}

return 0;
