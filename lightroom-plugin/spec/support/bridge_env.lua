-- Where the real bridge started by spec/run.sh is, and the fixture photos it wrote.
local socket = require 'socket'
local lfs = require 'lfs'

local Env = {}

local function need(name)
	local value = os.getenv(name)
	assert(value and value ~= '', name .. ' is not set: run these specs through lightroom-plugin/spec/run.sh, '
		.. 'which starts the real bridge')
	return value
end

function Env.url() return need('RB_SPEC_URL') end
function Env.token() return need('RB_SPEC_TOKEN') end
function Env.tmp() return need('RB_SPEC_TMP') end

function Env.fixture(name)
	local path = need('RB_SPEC_FIXTURES') .. '/' .. name
	assert(lfs.attributes(path, 'mode') == 'file', 'missing fixture ' .. path)
	return path
end

-- ../shared/samples/<name>, or nil when the shared folder is absent.
function Env.sharedSample(name)
	local shared = os.getenv('RB_SPEC_SHARED')
	if not shared then return nil end
	local path = shared .. '/samples/' .. name
	if lfs.attributes(path, 'mode') ~= 'file' then return nil end
	return path
end

function Env.freePort()
	local s = assert(socket.bind('127.0.0.1', 0))
	local _, port = s:getsockname()
	s:close()
	return port
end

-- Points the plug-in's prefs at the real bridge (as Plug-in Manager would).
function Env.pair(Lr, overrides)
	overrides = overrides or {}
	Lr.prefs.bridgeUrl = overrides.url or Env.url()
	Lr.prefs.bridgeToken = overrides.token or Env.token()
	Lr.prefs.bridgeTimeout = overrides.timeout or 120
end

-- Files our plug-in left in the temp folder Lightroom gives it.
function Env.leftoversInTemp()
	local found = {}
	for name in lfs.dir(Env.tmp()) do
		if name:match('^RetouchBridge') then found[#found + 1] = name end
	end
	return found
end

--[[ A server in place of the bridge (spec/support/fake_server.lua): 'crash' (a bridge that
proves its identity and fails every operation with HTTP 500), or an impostor: 'no-proof',
'wrong-proof', 'other-token', or 'relay' (forwards everything to the real bridge on its own
port and passes the answers back); on `port` if given. Runs as its own lua5.1 process (the
plug-in's HTTP calls block), found at the port it reports. received() gives every request
it got (and all of them as one raw string). ]]
function Env.startFakeServer(mode, port)
	local portFile, logFile = os.tmpname(), os.tmpname()
	os.remove(portFile)
	local script = 'spec/support/fake_server.lua'
	assert(os.execute(string.format('lua5.1 %s %s %s %s %s >/dev/null 2>&1 &', script, mode, portFile, logFile,
		port or '')) == 0)
	port = nil
	for _ = 1, 100 do
		local f = io.open(portFile)
		if f then
			port = tonumber(f:read('*a'))
			f:close()
			if port then break end
		end
		socket.sleep(0.05)
	end
	os.remove(portFile)
	assert(port, 'the fake server did not start')
	local server = { url = 'http://127.0.0.1:' .. port, port = port }
	function server.received()
		local f = assert(io.open(logFile, 'rb'))
		local raw = f:read('*a')
		f:close()
		local list = {}
		for request in raw:gmatch('(.-)\n%-%-end of request%-%-\n') do list[#list + 1] = request end
		return list, raw
	end
	function server.stop()
		if server.stopped then return end
		server.stopped = true
		local c = socket.connect('127.0.0.1', port)
		if c then
			c:send('GET /quit HTTP/1.0\r\n\r\n')
			c:receive('*a')
			c:close()
		end
		os.remove(logFile)
	end
	return server
end

function Env.startCrashingServer()
	return Env.startFakeServer('crash')
end

return Env
