local Lr = require 'lightroom_standin'
local Views = require 'views'
local lfs = require 'lfs'
local socket = require 'socket'

local function pluginFile(name) return Lr.PLUGIN_DIR .. '/' .. name end

describe('the plug-in package', function()
	before_each(function() Lr.reset() end)

	it('Info.lua declares the filter, the menu item and the Plug-in Manager section', function()
		local info = Lr.runPluginFile('Info.lua')
		assert.is_number(info.LrSdkVersion)
		assert.is_true(info.LrSdkMinimumVersion <= info.LrSdkVersion)
		assert.matches('^[%w.]+$', info.LrToolkitIdentifier)
		assert.are.equal('Retouch Bridge', info.LrPluginName)
		assert.are.equal('AI Enhance', info.LrExportFilterProvider.title)
		assert.is_string(info.LrExportFilterProvider.id)
		local item = info.LrLibraryMenuItems[1]
		assert.are.equal('Enhance selected photos…', item.title)
		assert.are.equal('photosSelected', item.enabledWhen)
		for _, file in ipairs({ info.LrExportFilterProvider.file, item.file, info.LrPluginInfoProvider }) do
			assert.are.equal('file', lfs.attributes(pluginFile(file), 'mode'), file)
		end
	end)

	it('every plug-in file compiles as Lua 5.1 and loads with only the stand-in namespaces', function()
		for name in lfs.dir(Lr.PLUGIN_DIR) do
			if name:match('%.lua$') then
				assert(loadfile(pluginFile(name)))
				local module = name:gsub('%.lua$', '')
				if name ~= 'Info.lua' and name ~= 'EnhanceSelectedMenuItem.lua' then
					assert.is_table(require(module), name)
				end
			end
		end
	end)

	it('the export filter offers its preset fields and a section that warns about bad combinations', function()
		local provider = require 'AIEnhanceFilterProvider'
		assert.is_function(provider.postProcessRenderedPhotos)
		local keys = {}
		for _, field in ipairs(provider.exportPresetFields) do
			assert.is_not_nil(field.default, field.key)
			keys[field.key] = true
		end
		local props = (import 'LrBinding').makePropertyTable()
		for _, field in ipairs(provider.exportPresetFields) do props[field.key] = field.default end
		props.LR_format = 'JPEG'
		local section = provider.sectionForFilterInDialog((import 'LrView').osFactory(), props)
		assert.are.equal('AI Enhance (Retouch Bridge)', section.title)
		assert.are.equal('rb_synopsis', section.synopsis.bind)
		assert.are.equal('Upscale x2 (16-bit render)', props.rb_synopsis)
		assert.are.equal('', props.rb_warning)
		-- every setting has a control bound to it
		local bound = Views.boundKeys(section)
		for key in pairs(keys) do assert.is_true(bound[key] == true, key) end
		-- observers keep the synopsis and the warning current
		props.rb_background = 'remove'
		assert.matches('JPEG cannot hold', props.rb_warning)
		props.LR_format = 'PNG'
		assert.are.equal('', props.rb_warning)
		props.rb_faces = true
		assert.are.equal('Restore faces > Upscale x2 > Remove background', props.rb_synopsis)
		props.LR_format = 'JPEG'
		assert.are.equal('Restore faces > Upscale x2 > Remove background (16-bit render)', props.rb_synopsis)
	end)

	describe('Plug-in Manager section', function()
		local provider, props
		before_each(function()
			provider = require 'PluginInfoProvider'
			props = (import 'LrBinding').makePropertyTable()
		end)

		it('says where the token is with the names the tray menu and the CLI really use', function()
			-- The tray's menu items, read from the tray app itself.
			local tray = Lr.readFile(Lr.PLUGIN_DIR .. '/../../bridge/tray/app.py')
			local menu = {}
			for title in tray:gmatch('item%("([^"]+)"') do menu[#menu + 1] = title end
			assert.is_true(#menu > 3, 'menu items found in bridge/tray/app.py')
			local cli = Lr.readFile(Lr.PLUGIN_DIR .. '/../../bridge/cli/serve.py')
			assert.truthy(cli:find('add_parser("token"', 1, true), 'the CLI has a token command')

			provider.startDialog(props)
			local sections = provider.sectionsForTopOfDialog((import 'LrView').osFactory(), props)
			local help
			for _, text in ipairs(Views.ofKind(sections[1], 'static_text')) do
				if type(text.title) == 'string' and text.title:match('^Token:') then help = text.title end
			end
			local client = require('BridgeClient').new {}
			local texts = { help, client:describe { kind = 'noToken' }, client:describe { kind = 'http', status = 401 } }
			for _, text in ipairs(texts) do
				assert.truthy(text:find("'retouch-bridge token'", 1, true), text)
				local named
				for _, title in ipairs(menu) do
					if text:find(title, 1, true) then named = title end
				end
				assert.are.equal('Copy pairing token', named, text)
			end
		end)

		it('starts with the default URL and keeps what the user typed, cleaned', function()
			provider.startDialog(props)
			assert.are.equal('http://127.0.0.1:7847', props.bridgeUrl)
			assert.are.equal('', props.bridgeToken)
			props.bridgeUrl = ' localhost:9999/ '
			props.bridgeToken = '  tok\n'
			provider.endDialog(props)
			assert.are.equal('http://localhost:9999', Lr.prefs.bridgeUrl)
			assert.are.equal('tok', Lr.prefs.bridgeToken)
		end)

		it('Test connection says what to do when the bridge is down', function()
			local s = assert(socket.bind('127.0.0.1', 0))
			local _, port = s:getsockname()
			s:close()
			provider.startDialog(props)
			props.bridgeUrl = 'http://127.0.0.1:' .. port
			local sections = provider.sectionsForTopOfDialog((import 'LrView').osFactory(), props)
			local buttons = Views.ofKind(sections[1], 'push_button')
			assert.are.equal(1, #buttons)
			assert.are.equal('Test connection', buttons[1].title)
			buttons[1].action()
			assert.are.equal(1, Lr.tasks, 'the check runs in an async task')
			assert.matches('not running at http://127%.0%.0%.1:' .. port, props.connectionStatus)
			assert.is_false(props.connectionOk)
		end)

		it('says when a connected bridge cannot list its operations', function()
			local text = provider.describeConnection { version = '0.1.0', protocol = 1,
				capabilitiesProblem = 'Retouch Bridge failed (HTTP 500).' }
			assert.matches('token is accepted%. Its operations could not be listed: Retouch Bridge failed', text)
		end)

		it('lists the AI Enhance operations a bridge lacks', function()
			local text = provider.describeConnection { version = '0.1.0', protocol = 1, device = 'cpu',
				operations = { 'passthrough', 'upscale' } }
			assert.matches('Connected to Retouch Bridge 0%.1%.0 %(protocol 1%); the token is accepted%. Running on cpu%.', text)
			assert.matches('Not available on this bridge yet: restore%-faces, denoise, remove%-background, standardize',
				text)
		end)
	end)
end)
