-- lua5.1 crashing_server.lua PORT_FILE
-- Answers like a Retouch Bridge whose operations crash: GET /v1/health, /v1/jobs and
-- /v1/capabilities succeed, every POST gets 500 internal_error. Quits on GET /quit
-- or after 60 idle seconds, so it never outlives the spec run.
local socket = require 'socket'

local server = assert(socket.bind('127.0.0.1', 0))
local _, port = server:getsockname()
local f = assert(io.open(arg[1], 'w'))
f:write(tostring(port))
f:close()
server:settimeout(60)

local function reply(client, status, body)
	client:send(string.format('HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n'
		.. 'Connection: close\r\n\r\n%s', status, #body, body))
end

while true do
	local client = server:accept()
	if not client then break end
	client:settimeout(10)
	local requestLine = client:receive('*l') or ''
	local length = 0
	while true do
		local line = client:receive('*l')
		if not line or line == '' then break end
		local n = line:lower():match('^content%-length:%s*(%d+)')
		if n then length = tonumber(n) end
	end
	if length > 0 then client:receive(length) end
	local method, path = requestLine:match('^(%u+) (%S+)')
	if path == '/quit' then
		reply(client, '200 OK', '{}')
		client:close()
		break
	elseif method == 'GET' and path == '/v1/health' then
		reply(client, '200 OK', '{"status":"ok","version":"0.1.0","protocol":1}')
	elseif method == 'GET' and path == '/v1/jobs' then
		reply(client, '200 OK', '{"jobs":[]}')
	elseif method == 'GET' and path == '/v1/capabilities' then
		reply(client, '200 OK', '{"protocol":1,"version":"0.1.0","operations":[{"name":"upscale"}],"device":"cpu"}')
	else
		reply(client, '500 Internal Server Error',
			'{"error":{"code":"internal_error","message":"RuntimeError: simulated crash in the operation"}}')
	end
	client:close()
end
server:close()
