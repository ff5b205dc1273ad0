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

var host = ServerHost.Build(commandLine);
using (host.Model)
{
    await host.App.RunAsync();
}

return 0;
