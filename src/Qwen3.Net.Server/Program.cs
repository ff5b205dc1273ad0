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

ServerHost host;
try
{
    host = ServerHost.Build(commandLine);
}
catch (Exception e) when (e is ModelLoadException or NotSupportedException or DirectoryNotFoundException or ArgumentOutOfRangeException or Qwen3.Net.Hub.HubException)
{
    // A model folder that cannot be served, or a --context or --threads it cannot take: the message says which.
    Console.Error.WriteLine(e.Message);
    return 1;
}

using (host.Model)
{
    await host.App.RunAsync();
}

return 0;
