// Preloaded into the server processes tests spawn (spawnServer), which get an IPC channel to
// the test worker. If that worker dies without cleaning up, even killed outright, the channel
// closes and the server shuts down instead of living on.
process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
// The channel alone must not keep a server alive that would otherwise exit.
process.channel?.unref();
