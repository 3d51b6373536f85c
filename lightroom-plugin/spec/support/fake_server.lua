-- lua5.1 spec/support/fake_server.lua MODE PORT_FILE LOG_FILE [PORT]   (run from lightroom-plugin/)
-- A server the specs start in place of the bridge. It writes its port to PORT_FILE and
-- every request it receives (request line, headers, body) to LOG_FILE. PORT: a given
-- port (to take over one a server just left), else any free one.
--   crash        a bridge whose operations crash: it proves its identity with $RB_SPEC_TOKEN,
--                health, jobs and capabilities succeed, every POST gets 500 internal_error
--   no-proof     an impostor: answers health like a bridge, without the identity proof
--   wrong-proof  an impostor with a made-up proof
--   other-token  a bridge holding another pairing token
--   relay        a squatter that forwards every request unchanged to the REAL bridge at
--                $RB_SPEC_URL (same token, another port) and passes its answers back
-- Impostors answer every other request with 200 (to tempt the plug-in into sending more).
-- Quits on GET /quit or after 60 idle seconds, so it never outlives the spec run.
package.path = 'RetouchBridge.lrplugin/?.lua;' .. package.path
local socket = require 'socket'
local Identity = require 'Identity'

local mode, portFile, logFile, wantedPort = arg[1], arg[2], arg[3], tonumber(arg[4])
local HEALTH = '{"status":"ok","version":"0.1.0","protocol":1%s}'

local server = assert(socket.bind('127.0.0.1', wantedPort or 0))
local _, port = server:getsockname()

-- Proofs as a server on this port makes them.
local function proofFor(nonce)
	if mode == 'crash' then return Identity.proof(assert(os.getenv('RB_SPEC_TOKEN')), port, nonce) end
	if mode == 'wrong-proof' then return string.rep('0', 64) end
	if mode == 'other-token' then return Identity.proof('someone-elses-token', port, nonce) end
	return nil
end

-- relay: the request as it came, to the real bridge; its whole answer back, as it came.
-- Only Connection changes, so the bridge closes and the end of its answer is clear.
local function relay(client, head, body)
	local target = tonumber(assert(os.getenv('RB_SPEC_URL'), 'RB_SPEC_URL'):match(':(%d+)$'))
	local upstream = assert(socket.connect('127.0.0.1', target))
	upstream:settimeout(30)
	local lines = {}
	for _, line in ipairs(head) do
		if not line:lower():match('^connection:') then lines[#lines + 1] = line end
	end
	lines[#lines + 1] = 'Connection: close'
	upstream:send(table.concat(lines, '\r\n') .. '\r\n\r\n' .. body)
	local answer, _, partial = upstream:receive('*a')
	upstream:close()
	client:send(answer or partial or '')
end
local log = assert(io.open(logFile, 'wb'))
local f = assert(io.open(portFile, 'w'))
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
	local head, length = { requestLine }, 0
	while true do
		local line = client:receive('*l')
		if not line or line == '' then break end
		head[#head + 1] = line
		local n = line:lower():match('^content%-length:%s*(%d+)')
		if n then length = tonumber(n) end
	end
	local body = length > 0 and (client:receive(length) or '') or ''
	log:write(table.concat(head, '\n'), '\n\n', body, '\n--end of request--\n')
	log:flush()
	local method, path = requestLine:match('^(%u+) (%S+)')
	local nonce = path and path:match('^/v1/health%?challenge=([%w_-]+)$')
	if mode == 'relay' and path ~= '/quit' then
		relay(client, head, body)
	elseif path == '/quit' then
		server:close() -- first, so the port is free by the time the caller reads the answer
		reply(client, '200 OK', '{}')
		client:close()
		break
	elseif method == 'GET' and (path == '/v1/health' or nonce) then
		local proof = nonce and proofFor(nonce)
		reply(client, '200 OK', HEALTH:format(proof and (',"proof":"' .. proof .. '"') or ''))
	elseif method == 'GET' and path == '/v1/jobs' then
		reply(client, '200 OK', '{"jobs":[]}')
	elseif method == 'GET' and path == '/v1/capabilities' then
		reply(client, '200 OK', '{"protocol":1,"version":"0.1.0","operations":[{"name":"upscale"}],"device":"cpu"}')
	elseif mode == 'crash' then
		reply(client, '500 Internal Server Error',
			'{"error":{"code":"internal_error","message":"RuntimeError: simulated crash in the operation"}}')
	else
		reply(client, '200 OK', '{}')
	end
	client:close()
end
log:close()
pcall(server.close, server)
